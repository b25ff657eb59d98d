import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { Event } from "../src/index.js"

const isolated = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, Event.CurrentHub, new Event.Hub())

describe("Event", () => {
  it.effect("fire broadcasts to every current waiter", () =>
    Effect.gen(function* () {
      const said = Event.make<string>("said")
      const waiters = yield* Effect.forEach([1, 2, 3], () =>
        Effect.forkChild(Event.wait(said), { startImmediately: true })
      )
      expect(yield* Event.fire(said, "hello")).toBe(3)
      expect(yield* Fiber.joinAll(waiters)).toEqual(["hello", "hello", "hello"])
    }).pipe(isolated)
  )

  it.effect("fire with no waiter is lost (unbuffered)", () =>
    Effect.gen(function* () {
      expect(yield* Event.fire("nobody", 1)).toBe(0)
      const late = yield* Effect.forkChild(Event.wait("nobody"), { startImmediately: true })
      yield* Effect.yieldNow
      expect(late.pollUnsafe()).toBeUndefined()
      yield* Event.fire("nobody", 2)
      expect(yield* Fiber.join(late)).toBe(2)
    }).pipe(isolated)
  )

  it.effect("fire never yields: waiters are woken, but run only after the firing fiber yields", () =>
    Effect.gen(function* () {
      const order: Array<string> = []
      const waiter = yield* Effect.forkChild(
        Event.wait("go").pipe(Effect.tap(() => Effect.sync(() => order.push("waiter")))),
        { startImmediately: true }
      )
      yield* Event.fire("go")
      order.push("firer")
      yield* Fiber.join(waiter)
      expect(order).toEqual(["firer", "waiter"])
    }).pipe(isolated)
  )

  it.effect("typed events with the same name are distinct; string events are shared by name", () =>
    Effect.gen(function* () {
      const a = Event.make<number>("x")
      const b = Event.make<number>("x")
      const waitA = yield* Effect.forkChild(Event.wait(a), { startImmediately: true })
      expect(yield* Event.fire(b, 1)).toBe(0)
      expect(yield* Event.fire(a, 2)).toBe(1)
      expect(yield* Fiber.join(waitA)).toBe(2)
      const waitS = yield* Effect.forkChild(Event.wait("x"), { startImmediately: true })
      expect(yield* Event.fire("x", 3)).toBe(1)
      expect(yield* Fiber.join(waitS)).toBe(3)
    }).pipe(isolated)
  )

  it.effect("unused event keys are removed from the hub", () =>
    Effect.gen(function* () {
      const hub = new Event.Hub()
      const fiber = yield* Effect.forkChild(Event.wait("k").pipe(Effect.provideService(Event.CurrentHub, hub)), {
        startImmediately: true
      })
      expect(hub.size).toBe(1)
      yield* Fiber.interrupt(fiber)
      expect(hub.size).toBe(0)
    })
  )
})
