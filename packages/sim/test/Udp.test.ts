import { Network } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import { TestClock } from "effect/testing"
import { SimNetwork } from "../src/index.js"
import { bytes, inet, text, udpEcho, udpSocket } from "./helpers.js"

const sim = (options?: SimNetwork.Options) =>
  Effect.provide(SimNetwork.layer({ seed: 1, hosts: ["a", "b"], ...options }))

describe("simulated UDP", () => {
  it.effect("echoes between two hosts with latency in simulated time", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("a", "b", { latency: "10 millis" })
      yield* SimNetwork.onHost("b")(udpEcho(7))
      const b = yield* sim.host("b")
      const client = yield* SimNetwork.onHost("a")(udpSocket())
      const fiber = yield* Effect.forkChild(
        Effect.gen(function* () {
          yield* client.writer.write({ payload: bytes("ping"), address: inet(b.ipv4[0] ?? "", 7) })
          const [reply] = yield* client.reader.pull
          return { payload: text(reply.payload), from: reply.address }
        })
      )
      yield* TestClock.adjust("19 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const reply = yield* Fiber.join(fiber)
      assert.strictEqual(reply.payload, "ping")
      assert.strictEqual(reply.from.port, 7)
    }).pipe(sim())
  )

  it.effect("resolves host names and works over IPv6", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* SimNetwork.onHost("b")(udpEcho(9))
      const addresses = yield* sim.network.lookup("b", { family: "IPv6" })
      assert.strictEqual(addresses.length, 1)
      const client = yield* SimNetwork.onHost("a")(udpSocket({ family: "ipv6" }))
      const b = yield* sim.host("b")
      yield* client.writer.write({ payload: "v6", address: inet(b.ipv6[0] ?? "", 9) })
      const [reply] = yield* client.reader.pull
      assert.strictEqual(text(reply.payload), "v6")
      const a = yield* sim.host("a")
      const trace = yield* sim.trace
      assert.strictEqual(trace[0]?.packet.from.address, a.ipv6[0])
    }).pipe(sim())
  )
})

describe("providing the simulated network", () => {
  it.effect("Network.provide(effect, sim.network) runs the effect on the simulation", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.make({ seed: 1, hosts: ["server"] })
      const answer = yield* Effect.gen(function* () {
        // bind by host name, as a server would
        const port = yield* SimNetwork.onHost("server")(udpEcho(7))
        const client = yield* udpSocket()
        const [server] = (yield* sim.host("server")).ipv4
        yield* client.writer.write({ payload: "via provide", address: inet(server ?? "", port) })
        const [reply] = yield* client.reader.pull
        return text(reply.payload)
      }).pipe(Network.provide(sim.network))
      assert.strictEqual(answer, "via provide")
      assert.strictEqual((yield* sim.stats).delivered, 2)
    })
  )

  it.effect("binds and listens on a host's own name", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      const network = yield* Network.Network
      const socket = yield* SimNetwork.onHost("a")(udpSocket({ bind: { address: "a", port: 53 } }))
      const a = yield* sim.host("a")
      assert.strictEqual(NetAddress.formatHost(socket.reader.address), a.ipv4[0])
      const server = yield* SimNetwork.onHost("a")(network.listen({ host: "a", port: 80 }))
      assert.isTrue(NetAddress.isInetAddress(server.address))
    }).pipe(sim())
  )
})
