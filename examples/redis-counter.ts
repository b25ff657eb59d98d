/**
 * A page-visit counter on Redis: concurrent visits counted with INCR (automatically pipelined), each
 * announced on a pub/sub channel, and a report computed under a distributed lock.
 *
 * Starts nothing itself: give it a server.
 *   pnpm exec tsx --conditions=@diesel/source examples/redis-counter.ts [redis://host:port/db]
 * (or set REDIS_URL; default redis://127.0.0.1:6379).
 */
import { Commands, RedisClient, RedisLock, RedisPubSub } from "@diesel/clients/redis"
import { NodeRuntime } from "@effect/platform-node"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"

/** Count one visit of `page` and announce it. */
const countVisit = (page: string) =>
  Effect.gen(function* () {
    const redis = yield* RedisClient.RedisClient
    const [visits] = yield* redis.pipeline([
      Commands.incr(`example:visits:${page}`),
      Commands.sadd("example:pages", page)
    ])
    yield* redis.publish("example:visits", `${page}=${visits}`)
    return visits
  })

/** Visit a few pages concurrently, print the announcements and a report. */
const program = Effect.gen(function* () {
  const redis = yield* RedisClient.RedisClient
  const hub = yield* RedisPubSub.RedisPubSub
  const pages = ["home", "about", "home", "blog", "home"]
  const listener = yield* Effect.forkChild(
    hub.subscribe("example:visits").pipe(
      Stream.take(pages.length),
      Stream.runForEach((m) => Console.log(`announced ${m.payload}`))
    ),
    { startImmediately: true }
  )
  // Wait until the subscription is live so that no announcement is missed.
  yield* redis.send("PUBSUB", "NUMSUB", "example:visits").pipe(
    Effect.filterOrFail((reply) => Array.isArray(reply) && Number(reply[1]) > 0),
    Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 1000 })))
  )
  yield* Effect.forEach(pages, countVisit, { concurrency: "unbounded", discard: true })
  yield* Fiber.join(listener)
  const report = yield* RedisLock.withLock(
    "example:report",
    Effect.gen(function* () {
      const known = yield* redis.smembers("example:pages")
      const counts = yield* redis.mget(...known.map((p) => `example:visits:${p}`))
      return known.map((p, i) => `${p}: ${counts[i] ?? 0}`)
    })
  )
  yield* Console.log(report.sort().join("\n"))
})

const url = process.argv[2] ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const AppLive = RedisPubSub.layer().pipe(Layer.provideMerge(RedisClient.layer({ url })))

if (import.meta.url === `file://${process.argv[1]}`) {
  NodeRuntime.runMain(program.pipe(Effect.provide(AppLive)))
}
