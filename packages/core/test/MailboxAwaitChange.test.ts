import { Mailbox } from "@diesel/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"

describe("Mailbox.awaitChange", () => {
  it.effect("returns at once when a message is there or the mailbox is closed", () =>
    Effect.gen(function* () {
      const mailbox = Mailbox.make<number>({ capacity: 2 })
      mailbox.offerUnsafe(1)
      yield* mailbox.awaitChange
      mailbox.close()
      expect(mailbox.poll()).toBe(1)
      yield* mailbox.awaitChange // closed and empty: returns, never fails
    })
  )

  it.effect("wakes on a message, on notify and on close", () =>
    Effect.gen(function* () {
      const mailbox = Mailbox.make<number>({ capacity: 2 })
      const onMessage = yield* Effect.forkChild(mailbox.awaitChange, { startImmediately: true })
      mailbox.offerUnsafe(7)
      yield* Fiber.join(onMessage)
      expect(mailbox.poll()).toBe(7)
      const onNotify = yield* Effect.forkChild(mailbox.awaitChange, { startImmediately: true })
      mailbox.notify()
      yield* Fiber.join(onNotify)
      expect(mailbox.size).toBe(0)
      const onClose = yield* Effect.forkChild(mailbox.awaitChange, { startImmediately: true })
      mailbox.close()
      yield* Fiber.join(onClose)
      expect(mailbox.isClosed).toBe(true)
    })
  )

  it.effect("an interrupted wait is replaced by the same fiber's next one; a second fiber waits too", () =>
    Effect.gen(function* () {
      const mailbox = Mailbox.make<number>({ capacity: 4 })
      // a wait that loses a race leaves its (harmless) waiter behind; the same fiber waits again
      const raced = yield* Effect.raceFirst(mailbox.awaitChange.pipe(Effect.as("change")), Effect.succeed("other"))
      expect(raced).toBe("other")
      const first = yield* Effect.forkChild(mailbox.awaitChange, { startImmediately: true })
      const second = yield* Effect.forkChild(mailbox.awaitChange, { startImmediately: true })
      mailbox.offerUnsafe(1)
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect(mailbox.size).toBe(1)
    })
  )
})
