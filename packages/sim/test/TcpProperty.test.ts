import { Network } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema } from "effect"
import { SimNetwork } from "../src/index.js"
import { readBytes, tcpEcho } from "./helpers.js"

describe("simulated TCP, property", () => {
  it.effect.prop(
    "any seed, any loss up to 30%, any chunking: the echo returns exactly the bytes sent, in order",
    [
      Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1_000_000 })),
      Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 30 })),
      Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 5000 }))).check(
        Schema.isMinLength(1),
        Schema.isMaxLength(12)
      )
    ],
    ([seed, lossPercent, chunks]) =>
      Effect.gen(function* () {
        const sim = yield* SimNetwork.SimNetwork
        yield* sim.link("a", "b", {
          latency: "5 millis",
          jitter: "2 millis",
          loss: lossPercent / 100,
          reorder: 0.1,
          duplicate: 0.05,
          mtu: 600
        })
        const port = yield* SimNetwork.onHost("b")(tcpEcho(7))
        const total = chunks.reduce((sum, size) => sum + size, 0)
        const sent = new Uint8Array(total)
        for (let i = 0; i < total; i++) sent[i] = (i * 31 + seed) & 255
        const network = yield* Network.Network
        const received = yield* SimNetwork.onHost("a")(
          Effect.gen(function* () {
            const socket = yield* network.connect({ host: "b", port })
            const reader = yield* socket.reader
            const writer = yield* socket.writer
            const reading = yield* Effect.forkChild(readBytes(reader.pull, total))
            let offset = 0
            for (const size of chunks) {
              yield* writer.write(sent.subarray(offset, offset + size))
              offset += size
            }
            return yield* Fiber.join(reading)
          }).pipe(Effect.scoped)
        )
        assert.deepStrictEqual(received, sent)
      }).pipe(Effect.scoped, Effect.provide(SimNetwork.layer({ seed, hosts: ["a", "b"], clock: "virtual" }))),
    { arbitrary: { runs: 40 } }
  )
})
