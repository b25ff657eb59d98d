// The example of packages/sim/README.md, verbatim: keep them in sync.
import { Network } from "@diesel/core"
import { SimNetwork } from "@diesel/sim"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NetAddress from "effect/net/NetAddress"

// A UDP echo server: whatever it receives, it sends back.
const echoServer = Effect.gen(function* () {
  const network = yield* Network.Network
  const socket = yield* network.datagramSocket({ bind: { port: 7 } })
  const reader = yield* socket.reader
  const writer = yield* socket.writer
  while (true) {
    for (const datagram of yield* reader.pull) yield* writer.write({ payload: datagram.payload, address: datagram })
  }
}).pipe(Effect.scoped)

// A client that asks until it gets an answer (UDP may lose the question or the answer).
const ask = (question: string) =>
  Effect.gen(function* () {
    const network = yield* Network.Network
    const [server = NetAddress.ipv4Loopback] = yield* network.lookup("server", { family: "IPv4" })
    const socket = yield* network.datagramSocket({})
    const reader = yield* socket.reader
    const writer = yield* socket.writer
    const target = NetAddress.inetAddressUnsafe(server, 7)
    const answer = yield* writer
      .write({ payload: question, address: target })
      .pipe(
        Effect.andThen(Effect.timeoutOption(reader.pull, "200 millis")),
        Effect.repeat({ until: (reply) => reply._tag === "Some" })
      )
    return answer._tag === "Some" ? new TextDecoder().decode(answer.value[0].payload) : ""
  }).pipe(Effect.scoped)

it.effect("the echo answers across a lossy, slow link", () =>
  Effect.gen(function* () {
    const sim = yield* SimNetwork.SimNetwork
    yield* sim.link("client", "server", { latency: "40 millis", jitter: "10 millis", loss: 0.3 })
    yield* sim.spawn("server", echoServer)

    // sim.run advances the TestClock until the effect completes: a simulated second takes microseconds
    const answer = yield* sim.run(SimNetwork.onHost("client")(ask("hello")))

    assert.strictEqual(answer, "hello")
    const stats = yield* sim.stats
    console.log(`sent ${stats.sent}, lost ${stats.dropped.loss}, trace hash ${yield* sim.traceHash}`)
  }).pipe(Effect.provide(SimNetwork.layer({ seed: 7, hosts: ["client", "server"] })))
)
