/**
 * The Redis client on both networks (real sockets, then @diesel/sim), against the RESP peer of the test
 * harness: the client reaches the OS only through the Network seam, so the simulation runs it unchanged.
 */
import { Commands, RedisClient } from "@diesel/clients/redis"
import { SimNetwork } from "@diesel/sim"
import { onBothNetworks } from "@diesel/sim/vitest"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as RespPeer from "../harness/RespPeer.js"

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined => {
  const error = Exit.findErrorOption(exit)
  return error._tag === "Some" ? error.value : undefined
}

onBothNetworks("RedisClient over the Network seam", (live) => {
  live("commands, pipelines and the RESP2 fallback", () =>
    Effect.gen(function* () {
      const peer = yield* RespPeer.make()
      const redis = yield* RedisClient.make({ port: peer.port, database: 2 })
      assert.strictEqual(yield* redis.protocol, 2)
      assert.strictEqual(yield* redis.ping(), "PONG")
      assert.isTrue(yield* redis.set("k", "v"))
      assert.deepStrictEqual(yield* redis.pipeline([Commands.get("k"), Commands.incr("n"), Commands.incr("n")]), [
        "v",
        1,
        2
      ])
      assert.deepStrictEqual(peer.received.slice(0, 2), [
        ["HELLO", "3"],
        ["SELECT", "2"]
      ])
    })
  )

  live("a silent server fails make() within connectTimeout", () =>
    Effect.gen(function* () {
      const peer = yield* RespPeer.make()
      peer.silent = true
      const error = failureOf(
        yield* Effect.exit(Effect.scoped(RedisClient.make({ port: peer.port, connectTimeout: "200 millis" })))
      )
      assert.strictEqual(error?._tag, "RedisConnectionError")
      if (error?._tag === "RedisConnectionError") assert.strictEqual(error.reason, "ConnectFailed")
    })
  )

  live("reconnecting into a silent server retries; commands abandoned meanwhile are never written", () =>
    Effect.gen(function* () {
      const peer = yield* RespPeer.make()
      const redis = yield* RedisClient.make({
        port: peer.port,
        connectTimeout: "100 millis",
        commandTimeout: "50 millis",
        reconnect: { baseDelay: "5 millis", maxDelay: "10 millis" }
      })
      assert.strictEqual(yield* redis.ping(), "PONG")
      peer.silent = true
      yield* peer.drop
      // every INCR below times out: lost in flight on the dropped connection, or queued while the client
      // reconnects into the silent server (each attempt times out and is retried)
      for (let i = 0; i < 5; i++) {
        const error = failureOf(yield* Effect.exit(redis.incr("abandoned")))
        assert.oneOf(error?._tag, ["RedisTimeoutError", "RedisConnectionError"])
      }
      const silentAttempts = peer.received.filter(([name]) => name === "HELLO").length
      assert.isAtLeast(silentAttempts, 2)
      peer.silent = false
      const value = yield* redis.get("abandoned").pipe(Effect.retry({ times: 100 }))
      assert.strictEqual(value, null)
      assert.isFalse(peer.received.some(([name]) => name === "INCR"))
    })
  )
})

describe("RedisClient on the simulated network", () => {
  it.live("connects to a host by name (the simulation's resolver, not getaddrinfo)", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.addHost("cache")
      const peer = yield* SimNetwork.onHost("cache")(RespPeer.make({ host: "0.0.0.0" }))
      const redis = yield* RedisClient.make({ url: `redis://cache:${peer.port}` })
      assert.strictEqual(yield* redis.ping(), "PONG")
      assert.strictEqual(redis.address, `cache:${peer.port}`)
    }).pipe(Effect.scoped, Effect.provide(SimNetwork.layer({ seed: 1 })))
  )
})
