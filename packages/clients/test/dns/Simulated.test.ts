import { Connection } from "@diesel/core"
import { SimNetwork } from "@diesel/sim"
import { UDPConnection } from "@diesel/udp"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { Authority, Resolver, ResolverConfig } from "../../src/dns/index.js"
import { fakeZone } from "../harness/FakeDnsServer.js"

/** An authoritative server for `fakeZone` on a UDPConnection: one conversation per client, every query answered. */
const authority = UDPConnection.eachDatagram((datagram) => {
  const response = Authority.respond(fakeZone, datagram.payload, { transport: "udp" })
  return response === undefined ? Effect.void : Connection.send(response)
})

const serveOn = (host: string) =>
  Effect.gen(function* () {
    const sim = yield* SimNetwork.SimNetwork
    yield* SimNetwork.onHost(host)(UDPConnection.make({ port: 53, handler: authority }))
    const info = yield* sim.host(host)
    return `${info.ipv4[0]}:53`
  })

const simulation = (seed: number, hosts: ReadonlyArray<string>) =>
  Effect.provide(SimNetwork.layer({ seed, hosts, clock: "virtual" }))

describe("the resolver on the simulated network", () => {
  it.effect("answers every lookup through 20% loss each way, by asking again after each timeout", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("client", "ns", { latency: "5 millis", loss: 0.2 })
      const server = yield* serveOn("ns")
      const resolver = yield* SimNetwork.onHost("client")(
        Resolver.make(ResolverConfig.make({ nameservers: [server], cache: false, timeout: "100 millis", attempts: 12 }))
      )
      const answers = yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => `h${i}.wild.fake.test`),
        (name) => resolver.resolve(name, "A"),
        { concurrency: 20 }
      )
      for (const answer of answers)
        assert.deepStrictEqual(
          answer.records.map((record) => record.data.address),
          ["10.9.1.1"]
        )
      const stats = resolver.stats()
      // Lost queries and lost answers were asked again; nothing arrived that was not asked for.
      assert.isAbove(stats.udpQueries, 100)
      assert.strictEqual(stats.rejected, 0)
      assert.isAbove((yield* sim.stats).dropped.loss, 0)
    }).pipe(simulation(3, ["client", "ns"]))
  )

  it.effect("a crashed name server is passed over after its timeout; after its restart it answers again", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      const first = yield* serveOn("ns1")
      const second = yield* serveOn("ns2")
      const resolver = yield* SimNetwork.onHost("client")(
        Resolver.make(
          ResolverConfig.make({ nameservers: [first, second], cache: false, timeout: "500 millis", attempts: 1 })
        )
      )
      assert.strictEqual((yield* resolver.resolve("www.fake.test", "A")).source, first)
      yield* sim.crash("ns1")
      assert.strictEqual((yield* resolver.resolve("www.fake.test", "A")).source, second)
      yield* sim.restart("ns1")
      yield* serveOn("ns1")
      assert.strictEqual((yield* resolver.resolve("www.fake.test", "A")).source, first)
    }).pipe(simulation(5, ["client", "ns1", "ns2"]))
  )

  it.effect("a socket closed under the resolver (its host crashed and restarted) is replaced", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      const server = yield* serveOn("ns")
      const resolver = yield* SimNetwork.onHost("client")(
        Resolver.make(ResolverConfig.make({ nameservers: [server], cache: false, timeout: "200 millis" }))
      )
      yield* resolver.resolve("www.fake.test", "A")
      const before = resolver.ports()
      yield* sim.crash("client")
      yield* sim.restart("client")
      // Queries may fail while the replacement is under way; then they are answered from a new socket.
      const answer = yield* resolver
        .resolve("www.fake.test", "A")
        .pipe(Effect.retry({ times: 5, schedule: Schedule.spaced("50 millis") }))
      assert.deepStrictEqual(
        answer.records.map((record) => record.data.address),
        ["10.9.0.1"]
      )
      assert.notDeepEqual(resolver.ports(), before)
      assert.strictEqual(resolver.stats().socketsOpened, 2)
    }).pipe(simulation(9, ["client", "ns"]))
  )
})
