import { Network } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Layer, Ref } from "effect"
import { SimClock, SimNetwork } from "../src/index.js"
import { inet, readBytes, tcpEcho, text, udpEcho, udpSocket } from "./helpers.js"

describe("SimClock", () => {
  it.effect("sleeps return at once, in virtual time, in order", () =>
    Effect.gen(function* () {
      const order = yield* Ref.make<Array<string>>([])
      const sleeper = (name: string, millis: number) =>
        Effect.andThen(
          Effect.sleep(`${millis} millis`),
          Ref.update(order, (all) => [...all, name])
        )
      const fibers = yield* Effect.forEach(
        [
          ["c", 300],
          ["a", 100],
          ["b", 200],
          ["a2", 100]
        ] as const,
        ([name, millis]) => Effect.forkChild(sleeper(name, millis))
      )
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(yield* Ref.get(order), ["a", "a2", "b", "c"])
      assert.strictEqual(yield* Clock.currentTimeMillis, 300)
      yield* Effect.sleep("1 hour")
      assert.strictEqual(yield* Clock.currentTimeMillis, 300 + 3_600_000)
    }).pipe(Effect.provide(SimClock.layer))
  )

  it.effect("timeouts fire in virtual time", () =>
    Effect.gen(function* () {
      const result = yield* Effect.timeoutOption(Effect.never, "5 seconds")
      assert.strictEqual(result._tag, "None")
      assert.strictEqual(yield* Clock.currentTimeMillis, 5000)
    }).pipe(Effect.provide(SimClock.layer))
  )

  it.effect("drives the simulated network without TestClock.adjust", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("a", "b", { latency: "25 millis", loss: 0.2 })
      yield* SimNetwork.onHost("b")(udpEcho(7))
      const port = yield* SimNetwork.onHost("b")(tcpEcho(8))
      const b = yield* sim.host("b")
      const client = yield* SimNetwork.onHost("a")(udpSocket())
      const answer = yield* client.writer
        .write({ payload: "ping", address: inet(b.ipv4[0] ?? "", 7) })
        .pipe(
          Effect.andThen(Effect.timeoutOption(client.reader.pull, "100 millis")),
          Effect.repeat({ until: (reply) => reply._tag === "Some" })
        )
      assert.strictEqual(answer._tag === "Some" ? text(answer.value[0].payload) : "", "ping")
      const network = yield* Network.Network
      const echoed = yield* SimNetwork.onHost("a")(
        Effect.gen(function* () {
          const socket = yield* network.connect({ host: "b", port })
          const reader = yield* socket.reader
          const writer = yield* socket.writer
          yield* writer.write("x".repeat(100_000))
          return yield* readBytes(reader.pull, 100_000)
        }).pipe(Effect.scoped)
      )
      assert.strictEqual(echoed.length, 100_000)
      assert.isAbove(yield* Clock.currentTimeMillis, 50)
    }).pipe(Effect.provide(Layer.provideMerge(SimNetwork.layer({ seed: 9, hosts: ["a", "b"] }), SimClock.layer)))
  )

  it.effect("replays exactly from its seed", () =>
    Effect.gen(function* () {
      const run = (seed: number) =>
        Effect.gen(function* () {
          const sim = yield* SimNetwork.SimNetwork
          yield* sim.link("a", "b", { latency: "10 millis", jitter: "5 millis", loss: 0.2, reorder: 0.2 })
          const port = yield* SimNetwork.onHost("b")(tcpEcho(8))
          const network = yield* Network.Network
          yield* Effect.forEach(
            [1, 2, 3],
            () =>
              SimNetwork.onHost("a")(
                Effect.gen(function* () {
                  const socket = yield* network.connect({ host: "b", port })
                  const reader = yield* socket.reader
                  const writer = yield* socket.writer
                  yield* writer.write(new Uint8Array(20_000))
                  yield* readBytes(reader.pull, 20_000)
                }).pipe(Effect.scoped)
              ),
            { concurrency: "unbounded", discard: true }
          )
          return { hash: yield* sim.traceHash, now: yield* Clock.currentTimeMillis }
        }).pipe(Effect.scoped, Effect.provide(SimNetwork.layer({ seed, hosts: ["a", "b"], clock: "virtual" })))
      const first = yield* run(3)
      assert.deepStrictEqual(yield* run(3), first)
      assert.notStrictEqual((yield* run(4)).hash, first.hash)
    })
  )
})
