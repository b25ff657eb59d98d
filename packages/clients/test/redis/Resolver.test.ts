/**
 * The Redis client resolves names through the Network seam: a name only diesel's resolver knows (knot's
 * zone, unknown to getaddrinfo) reaches a real redis-server.
 */
import { RedisClient } from "@diesel/clients/redis"
import { Network } from "@diesel/core"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { NetDns, Resolver } from "../../src/dns/index.js"
import * as KnotServer from "../harness/KnotServer.js"
import * as RedisServer from "../harness/RedisServer.js"

const ResolverOnKnot = Layer.unwrap(
  KnotServer.Knot.useSync((knot) => Resolver.layer({ nameservers: [knot.address], timeout: "2 seconds" }))
)

const Stack = NetDns.layerNetwork.pipe(
  Layer.provideMerge(ResolverOnKnot),
  Layer.provideMerge(KnotServer.layer),
  Layer.merge(RedisServer.layer())
)

layer(Stack, { excludeTestServices: true, timeout: "30 seconds" })("RedisClient and diesel's resolver", (it) => {
  it.effect("connects to a name served by NetDns.layerNetwork (ns1.example.test is 127.0.0.1 in knot)", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.RedisServer
      const redis = yield* RedisClient.make({ url: `redis://ns1.example.test:${server.port}` })
      assert.strictEqual(yield* redis.ping(), "PONG")
      assert.strictEqual(redis.address, `ns1.example.test:${server.port}`)
    })
  )

  it.effect("without the resolver the same name fails typed, with what getaddrinfo said", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.RedisServer
      const error = yield* Effect.flip(
        RedisClient.make({ url: `redis://ns1.example.test:${server.port}`, connectTimeout: "5 seconds" }).pipe(
          Effect.scoped,
          Network.provide(Network.node)
        )
      )
      assert.strictEqual(error._tag, "RedisConnectionError")
      if (error._tag === "RedisConnectionError") assert.strictEqual(error.reason, "ConnectFailed")
    })
  )
})
