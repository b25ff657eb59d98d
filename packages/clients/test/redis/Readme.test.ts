import { Commands, RedisClient, RedisLock, RedisPubSub } from "@diesel/clients/redis"
import { assert, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as RedisServer from "../harness/RedisServer.js"

// The README's example, as a user writes it: services from Layers.
const countVisit = (page: string) =>
  Effect.gen(function* () {
    const redis = yield* RedisClient.RedisClient
    const [visits] = yield* redis.pipeline([Commands.incr(`visits:${page}`), Commands.sadd("pages", page)])
    yield* redis.publish("visits", `${page}=${visits}`)
    return visits
  })

const RedisLive = Layer.unwrap(
  Effect.map(RedisServer.RedisServer, (server) => RedisClient.layer({ url: `${server.url}/3` }))
)
const AppLive = RedisPubSub.layer().pipe(Layer.provideMerge(RedisLive), Layer.provideMerge(RedisServer.layer()))

layer(AppLive, { timeout: 30_000, excludeTestServices: true })("README example", (it) => {
  it.effect("counts visits, announces them, and runs a job under a lock", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const hub = yield* RedisPubSub.RedisPubSub
      const announcements = yield* Effect.forkChild(hub.subscribe("visits").pipe(Stream.take(3), Stream.runCollect), {
        startImmediately: true
      })
      yield* redis.send("PUBSUB", "NUMSUB", "visits").pipe(
        Effect.filterOrFail((r) => Array.isArray(r) && r[1] === 1),
        Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 1000 })))
      )
      const counts = yield* Effect.forEach(["home", "about", "home"], countVisit, { concurrency: 1 })
      assert.deepStrictEqual(counts, [1, 1, 2])
      const messages = Chunk.toReadonlyArray(Chunk.fromIterable(yield* Fiber.join(announcements)))
      assert.deepStrictEqual(
        messages.map((m) => m.payload),
        ["home=1", "about=1", "home=2"]
      )
      const total = yield* RedisLock.withLock(
        "report",
        Effect.flatMap(redis.smembers("pages"), (pages) => redis.mget(...pages.map((p) => `visits:${p}`)))
      )
      assert.deepStrictEqual([...total].sort(), ["1", "2"])
    })
  )
})
