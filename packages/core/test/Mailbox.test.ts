import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { Mailbox } from "../src/index.js"

describe("Mailbox", () => {
  it.effect("dropNewest refuses new messages when full and counts them", () =>
    Effect.sync(() => {
      const mailbox = Mailbox.make<number>({ capacity: 2, policy: "dropNewest" })
      expect([1, 2, 3, 4].map((n) => mailbox.offerUnsafe(n))).toEqual([true, true, false, false])
      expect(mailbox.dropped).toBe(2)
      expect([mailbox.poll(), mailbox.poll(), mailbox.poll()]).toEqual([1, 2, undefined])
    })
  )

  it.effect("dropOldest discards the oldest message when full", () =>
    Effect.sync(() => {
      const mailbox = Mailbox.make<number>({ capacity: 2, policy: "dropOldest" })
      for (const n of [1, 2, 3, 4]) mailbox.offerUnsafe(n)
      expect(mailbox.dropped).toBe(2)
      expect([mailbox.poll(), mailbox.poll()]).toEqual([3, 4])
    })
  )

  it.effect("backpressure makes offer wait for room", () =>
    Effect.gen(function* () {
      const mailbox = Mailbox.make<number>({ capacity: 1, policy: "backpressure" })
      expect(yield* mailbox.offer(1)).toBe(true)
      const blocked = yield* Effect.forkChild(mailbox.offer(2), { startImmediately: true })
      yield* Effect.yieldNow
      expect(blocked.pollUnsafe()).toBeUndefined()
      expect(mailbox.poll()).toBe(1)
      expect(yield* Fiber.join(blocked)).toBe(true)
      expect(mailbox.poll()).toBe(2)
      expect(mailbox.dropped).toBe(0)
    })
  )

  it.effect("awaitItem does not consume; close lets readers drain, then fails them", () =>
    Effect.gen(function* () {
      const mailbox = Mailbox.make<string>({ capacity: 8 })
      const waiter = yield* Effect.forkChild(mailbox.awaitItem, { startImmediately: true })
      mailbox.offerUnsafe("a")
      yield* Fiber.join(waiter)
      expect(mailbox.size).toBe(1)
      mailbox.close()
      expect(mailbox.offerUnsafe("b")).toBe(false)
      yield* mailbox.awaitItem
      expect(mailbox.poll()).toBe("a")
      const exit = yield* Effect.exit(mailbox.awaitItem)
      expect(Exit.isFailure(exit)).toBe(true)
    })
  )

  it.effect("close wakes blocked writers and readers", () =>
    Effect.gen(function* () {
      const mailbox = Mailbox.make<number>({ capacity: 1, policy: "backpressure" })
      mailbox.offerUnsafe(1)
      const writer = yield* Effect.forkChild(mailbox.offer(2), { startImmediately: true })
      const empty = Mailbox.make<number>({ capacity: 1 })
      const reader = yield* Effect.forkChild(Effect.exit(empty.awaitItem), { startImmediately: true })
      mailbox.close()
      empty.close()
      expect(yield* Fiber.join(writer)).toBe(false)
      expect(Exit.isFailure(yield* Fiber.join(reader))).toBe(true)
    })
  )

  it.effect("keeps FIFO order across growth and wrap-around", () =>
    Effect.sync(() => {
      const mailbox = Mailbox.make<number>({ capacity: 100 })
      const out: Array<number> = []
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < 37; i++) mailbox.offerUnsafe(round * 100 + i)
        for (let i = 0; i < 30; i++) out.push(mailbox.poll() ?? -1)
      }
      while (mailbox.size > 0) out.push(mailbox.poll() ?? -1)
      const expected: Array<number> = []
      for (let round = 0; round < 10; round++) for (let i = 0; i < 37; i++) expected.push(round * 100 + i)
      expect(out).toEqual(expected)
    })
  )

  it("rejects a capacity below 1", () => {
    expect(() => Mailbox.make({ capacity: 0 })).toThrow(RangeError)
  })
})
