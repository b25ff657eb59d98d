import * as V8 from "node:v8"
import * as Vm from "node:vm"
import { Connection, Loop } from "@diesel/core"
import { UDPConnection } from "@diesel/udp"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as NetAddress from "effect/net/NetAddress"
import * as Scope from "effect/Scope"
import { onBothNetworks, testClient, text } from "./helpers.js"

const echo = Effect.forever(Effect.flatMap(UDPConnection.datagram, (datagram) => Connection.send(datagram.payload)))

const seriesValue = (
  snapshot: ReadonlyArray<Metric.Metric.Snapshot>,
  id: string,
  attributes: Record<string, string>
): number | undefined => {
  for (const entry of snapshot) {
    if (entry.id !== id) continue
    const attrs = entry.attributes ?? {}
    if (!Object.entries(attributes).every(([key, value]) => attrs[key] === value)) continue
    const state = entry.state
    if ("count" in state) return Number(state.count)
    if ("value" in state && typeof state.value === "number") return state.value
  }
  return undefined
}

/** `global.gc`, exposed at run time when node was not started with --expose-gc. */
const collectGarbage = (): (() => void) => {
  V8.setFlagsFromString("--expose-gc")
  const gc: unknown = Vm.runInNewContext("gc")
  if (typeof gc !== "function") throw new Error("gc not available")
  return () => {
    gc()
    gc()
  }
}

onBothNetworks("UDPConnection lifecycle", (live) => {
  live("metrics: live conversations, started/ended by reason, datagrams and bytes in/out, drops", () =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        maxConversations: 1,
        handler: Effect.gen(function* () {
          const datagram = yield* UDPConnection.datagram
          yield* Connection.send(datagram.payload)
          if (text(datagram.payload) !== "once") return yield* echo
        })
      })
      const socket = `server ${NetAddress.formatInet(server.localAddress)}`
      const a = yield* testClient()
      const b = yield* testClient()
      yield* a.send(server.localAddress, "once") // a conversation that completes
      assert.strictEqual(yield* a.receiveText, "once")
      yield* b.send(server.localAddress, "hello") // one that stays
      assert.strictEqual(yield* b.receiveText, "hello")
      yield* a.send(server.localAddress, "overflow") // the table is full: dropped
      yield* b.send(server.localAddress, "again!")
      assert.strictEqual(yield* b.receiveText, "again!")
      const snapshot = yield* Metric.snapshot
      assert.strictEqual(seriesValue(snapshot, "udp_conversations_live", { socket }), 1)
      assert.strictEqual(seriesValue(snapshot, "udp_conversations_started_total", { socket }), 2)
      assert.strictEqual(seriesValue(snapshot, "udp_conversations_ended_total", { socket, reason: "completed" }), 1)
      assert.strictEqual(seriesValue(snapshot, "udp_conversations_ended_total", { socket, reason: "failed" }), 0)
      assert.strictEqual(seriesValue(snapshot, "udp_datagrams_in_total", { socket }), 4)
      assert.strictEqual(seriesValue(snapshot, "udp_bytes_in_total", { socket }), 4 + 5 + 8 + 6)
      assert.strictEqual(seriesValue(snapshot, "udp_datagrams_out_total", { socket }), 3)
      assert.strictEqual(seriesValue(snapshot, "udp_bytes_out_total", { socket }), 4 + 5 + 6)
      assert.strictEqual(seriesValue(snapshot, "udp_datagrams_dropped_total", { socket, reason: "overflow" }), 1)
      assert.strictEqual(seriesValue(snapshot, "udp_datagrams_dropped_total", { socket, reason: "mailboxFull" }), 0)
    })
  )

  live("graceful shutdown runs every conversation's finalizers, which can still send", () =>
    Effect.gen(function* () {
      const finalized: Array<string> = []
      const handler = Effect.gen(function* () {
        const peer = NetAddress.formatInet(yield* UDPConnection.peer)
        yield* Effect.addFinalizer(() =>
          Effect.andThen(
            Connection.send("bye").pipe(Effect.ignore),
            Effect.sync(() => finalized.push(peer))
          )
        )
        return yield* echo
      }).pipe(Effect.scoped)
      const scope = yield* Scope.make()
      const server = yield* Scope.provide(UDPConnection.make({ port: 0, host: "127.0.0.1", handler }), scope)
      const clients = [yield* testClient(), yield* testClient(), yield* testClient()]
      for (const client of clients) {
        yield* client.send(server.localAddress, "hi")
        assert.strictEqual(yield* client.receiveText, "hi")
      }
      const before = (yield* Loop.list).filter((info) => info.kind === "conversation").length
      assert.isAtLeast(before, 3)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(finalized.sort(), clients.map((client) => NetAddress.formatInet(client.address)).sort())
      for (const client of clients) assert.strictEqual(yield* client.receiveText, "bye")
      assert.strictEqual(server.stats.ended.shutdown, 3)
      assert.strictEqual(server.stats.live, 0)
      const after = (yield* Loop.list).filter((info) => info.kind === "conversation").length
      assert.strictEqual(after, before - 3)
    })
  )
})

// node only: a heap baseline of the real-socket path, and the suite's time budget (the sim runs 100k exchanges too, slower)
describe("UDPConnection lifecycle, churn (node)", () => {
  it.live(
    "after 100,000 conversations have come and gone, memory and live loops are back to the baseline",
    () =>
      Effect.gen(function* () {
        const gc = collectGarbage()
        // one datagram, one reply, done: each exchange is a whole conversation
        const handler = Effect.flatMap(UDPConnection.datagram, (datagram) => Connection.send(datagram.payload))
        const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler })
        const clients = yield* Effect.forEach(Array.from({ length: 16 }), () => testClient())
        const exchange = (rounds: number) =>
          Effect.forEach(
            clients,
            (client) =>
              Effect.gen(function* () {
                for (let i = 0; i < rounds; i++) {
                  yield* client.send(server.localAddress, "c")
                  yield* client.receive
                }
              }),
            { concurrency: "unbounded", discard: true }
          )
        yield* exchange(500) // warm up
        gc()
        const baselineHeap = process.memoryUsage().heapUsed
        const baselineLoops = (yield* Loop.list).length
        const startedBefore = server.stats.started
        yield* exchange(6250) // 16 x 6250 = 100,000 conversations
        assert.strictEqual(server.stats.started - startedBefore, 100_000)
        assert.strictEqual(server.stats.ended.completed, server.stats.started)
        assert.strictEqual(yield* server.size, 0)
        assert.strictEqual((yield* Loop.list).length, baselineLoops)
        gc()
        const growth = process.memoryUsage().heapUsed - baselineHeap
        yield* Effect.logInfo(`heap growth after 100,000 conversations: ${growth} bytes`)
        // a leak of 20 bytes per conversation would show as 2 MB
        assert.isBelow(growth, 2_000_000, `heap grew by ${growth} bytes`)
      }),
    60_000
  )
})
