import { RedisClient, RedisPubSub } from "@diesel/clients/redis"
import { assert, describe, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as RedisServer from "../harness/RedisServer.js"

const setup = (options: RedisClient.Options = {}) =>
  Effect.gen(function* () {
    const server = yield* RedisServer.RedisServer
    const redis = yield* RedisClient.make({
      host: server.host,
      port: server.port,
      reconnect: { baseDelay: "10 millis", maxDelay: "50 millis" },
      ...options
    })
    const hub = yield* RedisPubSub.make(redis.driverOptions)
    return { redis, hub, server }
  })

/** Wait until the server counts `n` subscribers (readiness, not timing). */
const awaitSubscribers = (
  redis: RedisClient.RedisClientService,
  command: "NUMSUB" | "NUMPAT" | "SHARDNUMSUB",
  name: string,
  n: number
) =>
  redis.send("PUBSUB", command, ...(command === "NUMPAT" ? [] : [name])).pipe(
    Effect.filterOrFail((reply) => {
      if (typeof reply === "number") return reply === n
      return Array.isArray(reply) && reply[1] === n
    }),
    Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 1000 })))
  )

const collect = (stream: Stream.Stream<RedisPubSub.Message, unknown>, n: number) =>
  Effect.forkChild(stream.pipe(Stream.take(n), Stream.runCollect), { startImmediately: true })

const toArray = <A>(c: Iterable<A>): Array<A> => Array.from(Chunk.isChunk(c) ? Chunk.toReadonlyArray(c) : c)

layer(RedisServer.layer(), { timeout: 30_000, excludeTestServices: true })("RedisPubSub", (it) => {
  for (const protocol of [2, 3] as const) {
    describe(`RESP${protocol}`, () => {
      it.effect("channel and pattern subscriptions as streams", () =>
        Effect.gen(function* () {
          const { redis, hub } = yield* setup({ protocol })
          const ch = `news${protocol}`
          const onChannel = yield* collect(hub.subscribe(ch), 2)
          const onPattern = yield* collect(hub.psubscribe(`${ch}.*`), 1)
          yield* awaitSubscribers(redis, "NUMSUB", ch, 1)
          yield* awaitSubscribers(redis, "NUMPAT", "", 1)
          assert.strictEqual(yield* redis.publish(ch, "one"), 1)
          assert.strictEqual(yield* redis.publish(`${ch}.sport`, "goal"), 1)
          assert.strictEqual(yield* redis.publish(ch, "two"), 1)
          assert.deepStrictEqual(toArray(yield* Fiber.join(onChannel)), [
            { channel: ch, pattern: undefined, payload: "one" },
            { channel: ch, pattern: undefined, payload: "two" }
          ])
          assert.deepStrictEqual(toArray(yield* Fiber.join(onPattern)), [
            { channel: `${ch}.sport`, pattern: `${ch}.*`, payload: "goal" }
          ])
          // Both streams ended: the server-side subscriptions are gone.
          yield* awaitSubscribers(redis, "NUMSUB", ch, 0)
          yield* awaitSubscribers(redis, "NUMPAT", "", 0)
        })
      )

      it.effect("sharded pub/sub", () =>
        Effect.gen(function* () {
          const { redis, hub } = yield* setup({ protocol })
          const received = yield* collect(hub.ssubscribe(`shard${protocol}`), 1)
          yield* awaitSubscribers(redis, "SHARDNUMSUB", `shard${protocol}`, 1)
          assert.strictEqual(yield* redis.spublish(`shard${protocol}`, "s"), 1)
          assert.deepStrictEqual(toArray(yield* Fiber.join(received)), [
            { channel: `shard${protocol}`, pattern: undefined, payload: "s" }
          ])
        })
      )
    })
  }

  it.effect("subscriptions are added and removed at run time over one connection", () =>
    Effect.gen(function* () {
      const { redis, hub } = yield* setup()
      const first = yield* Effect.forkChild(hub.subscribe("dyn").pipe(Stream.runCollect), { startImmediately: true })
      const second = yield* collect(hub.subscribe("dyn", "dyn2"), 2)
      yield* awaitSubscribers(redis, "NUMSUB", "dyn2", 1)
      // One server-side subscription for two local subscribers.
      yield* awaitSubscribers(redis, "NUMSUB", "dyn", 1)
      yield* redis.publish("dyn", "a")
      yield* redis.publish("dyn2", "b")
      assert.deepStrictEqual(
        toArray(yield* Fiber.join(second)).map((m) => m.payload),
        ["a", "b"]
      )
      // dyn2 had only the second subscriber: gone; dyn is kept for the first.
      yield* awaitSubscribers(redis, "NUMSUB", "dyn2", 0)
      assert.deepStrictEqual(yield* hub.active, [{ kind: "channel", name: "dyn" }])
      yield* Fiber.interrupt(first)
      yield* awaitSubscribers(redis, "NUMSUB", "dyn", 0)
      assert.deepStrictEqual(yield* hub.active, [])
    })
  )

  it.effect("subscriptions are restored after the server restarts", () =>
    Effect.gen(function* () {
      const { redis, hub, server } = yield* setup()
      const received = yield* collect(hub.subscribe("survivor"), 2)
      yield* awaitSubscribers(redis, "NUMSUB", "survivor", 1)
      yield* redis.publish("survivor", "before")
      yield* server.stop
      yield* server.start
      yield* awaitSubscribers(redis, "NUMSUB", "survivor", 1)
      yield* redis.publish("survivor", "after")
      assert.deepStrictEqual(
        toArray(yield* Fiber.join(received)).map((m) => m.payload),
        ["before", "after"]
      )
    })
  )
})
