import { assert, describe, it, vi } from "@effect/vitest"
import { Effect, Exit, Layer, Option } from "effect"
import { TestClock } from "effect/testing"
import { SimNetwork } from "../src/index.js"
import { inet, text, udpSocket } from "./helpers.js"

/**
 * A stop-and-wait request/reply protocol over UDP: the client sends request n until it receives
 * "ack n" (resending every 50 ms), ignoring stale and duplicate acks; the server answers every request.
 */
const conversation = (requests: number) =>
  Effect.gen(function* () {
    const sim = yield* SimNetwork.SimNetwork
    const server = yield* SimNetwork.onHost("server")(udpSocket({ bind: { port: 9 } }))
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(server.reader.pull, (batch) =>
          Effect.forEach(batch, (d) => server.writer.write({ payload: `ack ${text(d.payload)}`, address: d }), {
            discard: true
          })
        )
      ).pipe(Effect.ignore)
    )
    const serverHost = yield* sim.host("server")
    const target = inet(serverHost.ipv4[0] ?? "", 9)
    const client = yield* SimNetwork.onHost("client")(udpSocket())
    const completed: Array<number> = []
    let sends = 0
    const awaitAck = (n: number): Effect.Effect<boolean> =>
      Effect.flatMap(Effect.timeoutOption(client.reader.pull, "50 millis"), (batch) =>
        Option.isNone(batch)
          ? Effect.succeed(false)
          : batch.value.some((d) => text(d.payload) === `ack ${n}`)
            ? Effect.succeed(true)
            : awaitAck(n)
      ).pipe(Effect.orDie)
    for (let n = 0; n < requests; n++) {
      let acked = false
      while (!acked) {
        sends++
        yield* client.writer.write({ payload: String(n), address: target })
        acked = yield* awaitAck(n)
      }
      completed.push(n)
    }
    return { completed, sends }
  })

describe("a UDP protocol over a bad network", () => {
  it.effect("completes under 20% loss, reordering and duplication", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("client", "server", {
        latency: "10 millis",
        jitter: "3 millis",
        loss: 0.2,
        reorder: 0.2,
        reorderDelay: "30 millis",
        duplicate: 0.05
      })
      const result = yield* sim.run(conversation(100))
      assert.deepStrictEqual(
        result.completed,
        Array.from({ length: 100 }, (_, i) => i)
      )
      // loss made the client resend
      assert.isAbove(result.sends, 120)
      const stats = yield* sim.stats
      assert.isAbove(stats.dropped.loss, 20)
    }).pipe(Effect.scoped, Effect.provide(SimNetwork.layer({ seed: 11, hosts: ["client", "server"] })))
  )

  it.effect("replays exactly from its seed", () =>
    Effect.gen(function* () {
      const run = (seed: number) =>
        Effect.gen(function* () {
          const sim = yield* SimNetwork.SimNetwork
          yield* sim.link("client", "server", { latency: "10 millis", jitter: "3 millis", loss: 0.2, reorder: 0.2 })
          const result = yield* sim.run(conversation(30))
          return { sends: result.sends, hash: yield* sim.traceHash }
        }).pipe(
          Effect.scoped,
          Effect.provide(Layer.provideMerge(SimNetwork.layer({ seed, hosts: ["client", "server"] }), TestClock.layer()))
        )
      const a = yield* run(5)
      const b = yield* run(5)
      const c = yield* run(6)
      assert.deepStrictEqual(a, b)
      assert.notStrictEqual(a.hash, c.hash)
    })
  )

  it.effect("a failing program prints the seed that reproduces it", () =>
    Effect.gen(function* () {
      const printed: Array<string> = []
      const spy = vi.spyOn(console, "error").mockImplementation((...args: Array<unknown>) => {
        printed.push(args.map(String).join(" "))
      })
      const exit = yield* Effect.fail("boom").pipe(Effect.provide(SimNetwork.layer({ seed: 123_456 })), Effect.exit)
      spy.mockRestore()
      assert.isTrue(Exit.isFailure(exit))
      assert.isTrue(printed.some((line) => line.includes("123456")))
    })
  )
})
