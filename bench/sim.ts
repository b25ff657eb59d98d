/**
 * Simulated network at scale: N simulated UDP peers, each on its own simulated host, talk to one echo
 * server for a simulated minute (one request per peer per second, 10 ms ± 2 ms latency, 1% loss), all
 * through diesel's `Network` seam. Reports the real time the simulated minute takes, and how many
 * simulated packets that is per real second, with time driven two ways: a `SimClock` (virtual time that
 * advances by itself) and `TestClock.adjust` (effect's test clock). Full size: 10,000 peers, one round
 * per variant (a round takes minutes); smoke: 1,000 peers for 5 s.
 *
 * Run alone: `pnpm exec tsx --conditions=@diesel/source bench/sim.ts [--smoke]`
 */
import { performance } from "node:perf_hooks"
import { Network } from "@diesel/core"
import { SimNetwork } from "@diesel/sim"
import { Duration, Effect, Fiber, Layer } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import { TestClock } from "effect/testing"
import { isMain, type Row, runAlone } from "./Harness.js"

interface Outcome {
  readonly realSeconds: number
  readonly packets: number
  readonly answered: number
  readonly requests: number
}

type ClockKind = "TestClock" | "SimClock"

const scenario = (peers: number, simulatedSeconds: number, clock: ClockKind): Effect.Effect<Outcome> =>
  Effect.gen(function* () {
    const sim = yield* SimNetwork.SimNetwork
    const network = yield* Network.Network
    yield* sim.addHost("server")
    yield* sim.setDefaultLink({ latency: "10 millis", jitter: "2 millis", loss: 0.01 })
    const hostNames = Array.from({ length: peers }, (_, i) => `peer-${i}`)
    for (const name of hostNames) yield* sim.addHost(name)
    const serverHost = yield* sim.host("server")
    const target = NetAddress.inetAddressFromIpStringUnsafe(serverHost.ipv4[0] ?? "", 9)

    // the echo server
    const server = yield* SimNetwork.onHost("server")(
      network.datagramSocket({ bind: { port: 9 }, receiveBuffer: { capacity: 65536 } })
    )
    const serverReader = yield* server.reader
    const serverWriter = yield* server.writer
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(serverReader.pull, (batch) =>
          Effect.forEach(batch, (datagram) => serverWriter.write({ payload: datagram.payload, address: datagram }), {
            discard: true
          })
        )
      ).pipe(Effect.ignore)
    )

    // the peers: one request per second each (open loop), a second fiber counting the answers
    let answered = 0
    let requests = 0
    const second = Duration.seconds(1)
    const peer = (name: string, index: number) =>
      SimNetwork.onHost(name)(
        Effect.gen(function* () {
          const socket = yield* network.datagramSocket({})
          const reader = yield* socket.reader
          const writer = yield* socket.writer
          yield* Effect.forkScoped(
            Effect.forever(Effect.map(reader.pull, (batch) => (answered += batch.length))).pipe(Effect.ignore)
          )
          // spread the peers over the first second
          yield* Effect.sleep(Duration.millis((index * 1000) / peers))
          const payload = new TextEncoder().encode(name)
          for (let round = 0; round < simulatedSeconds; round++) {
            requests++
            yield* writer.write({ payload, address: target })
            yield* Effect.sleep(second)
          }
        }).pipe(Effect.scoped, Effect.orDie)
      )

    const started = performance.now()
    const fiber = yield* Effect.forkChild(
      Effect.forEach(hostNames, (name, index) => peer(name, index), { concurrency: "unbounded", discard: true })
    )
    // under TestClock the bench advances time; a SimClock advances by itself
    if (clock === "TestClock") yield* TestClock.adjust(Duration.seconds(simulatedSeconds + 2))
    yield* Fiber.join(fiber)
    const realSeconds = (performance.now() - started) / 1000
    const stats = yield* sim.stats
    return { realSeconds, packets: stats.sent, answered, requests }
  }).pipe(
    Effect.scoped,
    Effect.orDie,
    Effect.provide(
      Layer.provideMerge(
        SimNetwork.layer({ seed: 1, traceCapacity: 0, clock: clock === "SimClock" ? "virtual" : "test" }),
        TestClock.layer()
      )
    )
  )

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

export const benchmark = {
  name: "sim",
  run: async (options: { readonly smoke: boolean }): Promise<ReadonlyArray<Row>> => {
    const peers = options.smoke ? 1_000 : 10_000
    const seconds = options.smoke ? 5 : 60
    // one round at full size: a round takes minutes of real time (see the README)
    const rounds = 1
    const label = `${peers.toLocaleString("en-US")} UDP peers x ${seconds} s simulated`
    const rows: Array<Row> = []
    const variants: ReadonlyArray<readonly [string, ClockKind]> = [
      ["SimClock (virtual time)", "SimClock"],
      ["TestClock.adjust", "TestClock"]
    ]
    for (const [name, clock] of variants) {
      const outcomes: Array<Outcome> = []
      for (let round = 0; round < rounds; round++) {
        outcomes.push(await Effect.runPromise(scenario(peers, seconds, clock)))
      }
      const last = outcomes[outcomes.length - 1]
      rows.push(
        {
          case: label,
          subject: `diesel sim, ${name}: real time`,
          value: median(outcomes.map((o) => o.realSeconds)),
          unit: "s",
          higherIsBetter: false
        },
        {
          case: label,
          subject: `diesel sim, ${name}: simulated packets per real second`,
          value: median(outcomes.map((o) => o.packets / o.realSeconds)),
          unit: "packets/s",
          higherIsBetter: true
        },
        {
          case: label,
          subject: `diesel sim, ${name}: requests answered (1% loss each way)`,
          value: last === undefined ? 0 : last.answered / Math.max(1, last.requests),
          unit: "ratio",
          higherIsBetter: true
        }
      )
    }
    return rows
  }
}

if (isMain(import.meta.url)) await runAlone(benchmark)
