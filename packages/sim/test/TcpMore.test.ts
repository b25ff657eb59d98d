import { Network } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { Rule, SimNetwork } from "../src/index.js"
import { readBytes, tcpEcho, text } from "./helpers.js"

const sim = (options?: SimNetwork.Options) =>
  Effect.provide(SimNetwork.layer({ seed: 5, hosts: ["client", "server"], ...options }))

const exchange = (host: string, port: number, payload: Uint8Array, options?: { family?: "ipv4" | "ipv6" }) =>
  SimNetwork.onHost("client")(
    Effect.gen(function* () {
      const network = yield* Network.Network
      const socket = yield* network.connect({ host, port, family: options?.family })
      const reader = yield* socket.reader
      const writer = yield* socket.writer
      const reading = yield* Effect.forkChild(readBytes(reader.pull, payload.length))
      yield* writer.write(payload)
      return yield* Fiber.join(reading)
    }).pipe(Effect.scoped)
  )

describe("simulated TCP, more", () => {
  it.effect("bandwidth limits throughput", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      // 100 KB/s each way: 100 KB takes at least a second to cross
      yield* sim.link("client", "server", { latency: "1 millis", bandwidth: 100_000 })
      const port = yield* SimNetwork.onHost("server")(tcpEcho(7000))
      const start = yield* Clock.currentTimeMillis
      const echoed = yield* sim.run(exchange("server", port, new Uint8Array(100_000).fill(1)))
      const elapsed = (yield* Clock.currentTimeMillis) - start
      assert.strictEqual(echoed.length, 100_000)
      assert.isAtLeast(elapsed, 1000)
    }).pipe(sim())
  )

  it.effect("works over IPv6", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      const port = yield* SimNetwork.onHost("server")(tcpEcho(7000))
      const echoed = yield* sim.run(exchange("server", port, new TextEncoder().encode("six"), { family: "ipv6" }))
      assert.strictEqual(text(echoed), "six")
      const server = yield* sim.host("server")
      const syn = (yield* sim.trace).find((event) => event.packet.flags === "SYN")
      assert.strictEqual(syn?.packet.to.address, server.ipv6[0])
    }).pipe(sim())
  )

  it.effect("a rule that drops the first two SYNs only delays the connection", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("client", "server", { latency: "5 millis" })
      yield* sim.rule(Rule.firstN(2, (packet) => packet.flags === "SYN", Rule.drop))
      const port = yield* SimNetwork.onHost("server")(tcpEcho(7000))
      const echoed = yield* sim.run(exchange("server", port, new TextEncoder().encode("late")))
      assert.strictEqual(text(echoed), "late")
      // SYN retransmitted after 1 s, then after 2 s more
      assert.isAtLeast(yield* Clock.currentTimeMillis, 3000)
      assert.strictEqual((yield* sim.stats).dropped.rule, 2)
    }).pipe(sim())
  )

  it.effect("TCP over a lossy link replays exactly from its seed", () =>
    Effect.gen(function* () {
      const run = (seed: number) =>
        Effect.gen(function* () {
          const sim = yield* SimNetwork.SimNetwork
          yield* sim.link("client", "server", { latency: "10 millis", jitter: "4 millis", loss: 0.2, reorder: 0.1 })
          const port = yield* SimNetwork.onHost("server")(tcpEcho(7000))
          yield* sim.run(exchange("server", port, new Uint8Array(200_000).fill(7)))
          return yield* sim.traceHash
        }).pipe(
          Effect.scoped,
          Effect.provide(Layer.provideMerge(SimNetwork.layer({ seed, hosts: ["client", "server"] }), TestClock.layer()))
        )
      const a = yield* run(1)
      assert.strictEqual(yield* run(1), a)
      assert.notStrictEqual(yield* run(2), a)
    })
  )

  it.effect("a listener on a crashed host fails its run", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      const network = yield* Network.Network
      const server = yield* SimNetwork.onHost("server")(network.listen({ port: 7000 }))
      const running = yield* Effect.forkChild(
        server.run(() => Effect.void),
        { startImmediately: true }
      )
      yield* sim.crash("server")
      const exit = yield* Fiber.await(running)
      assert.strictEqual(exit._tag, "Failure")
    }).pipe(sim())
  )
})
