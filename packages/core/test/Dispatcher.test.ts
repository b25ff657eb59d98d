import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Queue, Random, Scope } from "effect"
import { Dispatcher, Synchronized } from "../src/index.js"

describe("Dispatcher", () => {
  it.effect("each message goes to exactly one subscriber, spread across them", () =>
    Effect.gen(function* () {
      const jobs = yield* Dispatcher.make<number>()
      const a = yield* jobs.accept
      const b = yield* jobs.accept
      for (let i = 0; i < 200; i++) yield* jobs.dispatch(i)
      const got = [...(yield* Queue.clear(a)), ...(yield* Queue.clear(b))]
      expect(got.sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i))
      expect((yield* Queue.size(a)) + (yield* Queue.size(b))).toBe(0)
    }).pipe(Random.withSeed("dispatch"))
  )

  it.effect("messages without a subscriber wait in the backlog for the next one", () =>
    Effect.gen(function* () {
      const jobs = yield* Dispatcher.make<string>()
      yield* jobs.dispatch("early")
      expect(jobs.backlog()).toBe(1)
      const inbox = yield* jobs.accept
      expect(yield* Queue.take(inbox)).toBe("early")
      expect(jobs.backlog()).toBe(0)
    })
  )

  it.effect("a leaving subscriber's untaken messages are dispatched again", () =>
    Effect.gen(function* () {
      const jobs = yield* Dispatcher.make<string>()
      const scope = yield* Scope.make()
      const leaving = yield* jobs.accept.pipe(Scope.provide(scope))
      yield* jobs.dispatch("x")
      yield* jobs.dispatch("y")
      expect(yield* Queue.size(leaving)).toBe(2)
      yield* Scope.close(scope, Exit.void)
      expect(jobs.backlog()).toBe(2)
      const staying = yield* jobs.accept
      expect([yield* Queue.take(staying), yield* Queue.take(staying)]).toEqual(["x", "y"])
    })
  )

  it.effect("the backlog is bounded", () =>
    Effect.gen(function* () {
      const jobs = yield* Dispatcher.make<number>({ backlog: 2 })
      yield* jobs.dispatch(1)
      yield* jobs.dispatch(2)
      const error = yield* Effect.flip(jobs.dispatch(3))
      expect(error._tag).toBe("BacklogFullError")
    })
  )
})

describe("Synchronized", () => {
  it.effect("same key: one at a time; different keys: concurrently; unused keys are removed", () =>
    Effect.gen(function* () {
      const locks = yield* Synchronized.make<string>()
      const gate = yield* Deferred.make<void>()
      let inside = 0
      let maxInside = 0
      const critical = (key: string) =>
        locks.withLock(key)(
          Effect.gen(function* () {
            inside++
            maxInside = Math.max(maxInside, inside)
            yield* Deferred.await(gate)
            inside--
          })
        )
      const sameKey = yield* Effect.forkChild(
        Effect.all([critical("a"), critical("a"), critical("a")], { concurrency: "unbounded" })
      )
      const otherKey = yield* Effect.forkChild(critical("b"))
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      expect(inside).toBe(2)
      expect(locks.size()).toBe(2)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(sameKey)
      yield* Fiber.join(otherKey)
      expect(maxInside).toBe(2)
      expect(locks.size()).toBe(0)
    })
  )

  it.effect("a failing holder releases the lock", () =>
    Effect.gen(function* () {
      const locks = yield* Synchronized.make<number>()
      yield* Effect.ignore(locks.withLock(1)(Effect.fail("boom")))
      expect(yield* locks.withLock(1)(Effect.succeed("next"))).toBe("next")
      expect(locks.size()).toBe(0)
    })
  )
})
