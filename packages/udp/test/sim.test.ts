/**
 * What only the simulated network can do: a UDPConnection conversation across a link that loses and
 * reorders datagrams, reproducibly from a seed.
 */
import { Connection, Event } from "@diesel/core"
import { SimNetwork } from "@diesel/sim"
import { UDPConnection } from "@diesel/udp"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { text } from "./helpers.js"

const REQUESTS = 30

/** The server answers request `n` with `ack n`, every time it sees it (retries and duplicates too). */
const ackServer = Effect.scoped(
  Effect.andThen(
    UDPConnection.make({
      port: 9,
      handler: Effect.forever(
        Effect.flatMap(UDPConnection.datagram, (datagram) => Connection.send(`ack ${text(datagram.payload)}`))
      )
    }),
    Effect.never
  )
)

/**
 * Stop-and-wait: send request `n`, wait up to 100 ms for `ack n` (ignoring stale and duplicate acks), send
 * it again on timeout. Returns how many datagrams it sent.
 */
const stopAndWait = Effect.gen(function* () {
  let sends = 0
  for (let n = 0; n < REQUESTS; n++) {
    let acked = false
    while (!acked) {
      sends++
      yield* Connection.send(String(n))
      while (true) {
        const outcome = yield* Event.first({ receive: UDPConnection.datagramOp, sleep: "100 millis" })
        if (outcome._tag === "Sleep") break
        if (text(outcome.value.payload) === `ack ${n}`) {
          acked = true
          break
        }
      }
    }
  }
  return sends
})

const run = (seed: number) =>
  Effect.gen(function* () {
    const sim = yield* SimNetwork.SimNetwork
    yield* sim.link("client", "server", {
      latency: "10 millis",
      jitter: "3 millis",
      loss: 0.2,
      reorder: 0.2,
      reorderDelay: "30 millis"
    })
    yield* sim.spawn("server", ackServer)
    const sends = yield* SimNetwork.onHost("client")(
      UDPConnection.connect({ host: "server", port: 9, family: "ipv4" }, stopAndWait)
    )
    const stats = yield* sim.stats
    return { sends, lost: stats.dropped.loss, hash: yield* sim.traceHash }
  }).pipe(Effect.provide(SimNetwork.layer({ seed, hosts: ["client", "server"], clock: "virtual" })))

describe("UDPConnection on a simulated lossy network", () => {
  it.effect("a request/retry conversation completes under 20% loss and reordering, reproducibly", () =>
    Effect.gen(function* () {
      const first = yield* run(42)
      // every request was acknowledged (the conversation returned), and the network did get in the way
      assert.isAbove(first.sends, REQUESTS, "some requests or acks were lost and sent again")
      assert.isAbove(first.lost, 0)
      // same seed, same program: the same packets, in the same order
      const again = yield* run(42)
      assert.deepStrictEqual(again, first)
    })
  )
})
