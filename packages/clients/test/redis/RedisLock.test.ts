import { RedisClient, RedisLock } from "@diesel/clients/redis"
import { assert, layer } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as RedisServer from "../harness/RedisServer.js"

const ClientLayer = Layer.unwrap(
  Effect.map(RedisServer.RedisServer, (server) => RedisClient.layer({ host: server.host, port: server.port }))
).pipe(Layer.provideMerge(RedisServer.layer()))

const errorTag = <A, E>(exit: Exit.Exit<A, E>): string | undefined => {
  const error = Exit.findErrorOption(exit)
  return error._tag === "Some" && typeof error.value === "object" && error.value !== null && "_tag" in error.value
    ? String(error.value._tag)
    : undefined
}

layer(ClientLayer, { timeout: 30_000, excludeTestServices: true })("RedisLock", (it) => {
  it.effect("is exclusive, and free again after release", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const inner = yield* Effect.exit(
        RedisLock.withLock(
          "lock:a",
          Effect.gen(function* () {
            assert.strictEqual(typeof (yield* redis.get("lock:a")), "string")
            return yield* Effect.exit(RedisLock.withLock("lock:a", Effect.void))
          })
        )
      )
      assert.ok(Exit.isSuccess(inner))
      if (Exit.isSuccess(inner)) assert.strictEqual(errorTag(inner.value), "RedisLockNotAcquired")
      assert.strictEqual(yield* redis.get("lock:a"), null)
      assert.strictEqual(yield* RedisLock.withLock("lock:a", Effect.succeed(42)), 42)
    })
  )

  it.effect("waits for a held lock when asked to", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      yield* redis.set("lock:w", "someone", { expire: "150 millis" })
      const result = yield* RedisLock.withLock("lock:w", Effect.succeed("got it"), {
        wait: "5 seconds",
        retryDelay: "20 millis"
      })
      assert.strictEqual(result, "got it")
    })
  )

  it.effect("is renewed while held, past its time to live", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      yield* Effect.scoped(
        Effect.gen(function* () {
          const lock = yield* RedisLock.acquire("lock:r", { ttl: "150 millis" })
          // Let the original time to live pass several times over: renewals keep the key.
          yield* Effect.sleep("500 millis")
          assert.isTrue(yield* RedisLock.isHeld(lock))
          const ttl = yield* redis.ttl("lock:r")
          assert.ok(ttl !== null && ttl !== undefined && Duration.toMillis(ttl) > 0)
        })
      )
      assert.strictEqual(yield* redis.get("lock:r"), null)
    })
  )

  it.effect("a lost lock interrupts the holder, and release never deletes another owner's lock", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const holder = yield* Effect.forkChild(RedisLock.withLock("lock:l", Effect.never, { ttl: "150 millis" }), {
        startImmediately: true
      })
      // Wait for the lock to be taken, then steal it.
      yield* redis.get("lock:l").pipe(Effect.repeat({ until: (v) => v !== null }))
      yield* redis.set("lock:l", "thief")
      const exit = yield* Fiber.await(holder)
      assert.strictEqual(errorTag(exit), "RedisLockLost")
      assert.strictEqual(yield* redis.get("lock:l"), "thief")
    })
  )
})
