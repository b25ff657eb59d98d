import * as Net from "node:net"
import { Connection, Receive } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import { Metrics, TCPClient, type TCPConnection, TCPService } from "../src/index.js"
import { onBothNetworks, peerConnect, peerReadToEnd, rawConnect, rawRead, text } from "./helpers.js"

const MiB = 1024 * 1024

onBothNetworks("send", (live) => {
  live("a peer that does not pull holds the sender back (seam peer)", () =>
    Effect.gen(function* () {
      const opened = yield* Deferred.make<TCPConnection.TCPConnection>()
      const chunk = new Uint8Array(64 * 1024).fill(120)
      const total = 16 * MiB
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        handler: (connection) =>
          Effect.gen(function* () {
            yield* Deferred.succeed(opened, connection)
            for (let sent = 0; sent < total; sent += chunk.byteLength) yield* Connection.send(chunk)
            return "done"
          })
      })
      const client = yield* peerConnect(service.port)
      const connection = yield* Deferred.await(opened)
      yield* Effect.sleep("300 millis")
      assert.isBelow(connection.bytesOut(), 8 * MiB, "the sender must wait for the peer")
      const received = yield* client.read(total)
      assert.strictEqual(received.byteLength, total)
    })
  )

  live("priority: higher first, equal priorities in order, the message being written is not split", () =>
    Effect.gen(function* () {
      const opened = yield* Deferred.make<TCPConnection.TCPConnection>()
      const finished = yield* Deferred.make<void>()
      const big = new Uint8Array(32 * MiB).fill(46)
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        handler: (connection) =>
          Effect.gen(function* () {
            yield* Deferred.succeed(opened, connection)
            const fibers = [
              yield* Effect.forkChild(connection.sendWith(big), { startImmediately: true }),
              yield* Effect.forkChild(connection.sendWith("two", { priority: 2 }), { startImmediately: true }),
              yield* Effect.forkChild(connection.sendWith("three", { priority: 3 }), { startImmediately: true }),
              yield* Effect.forkChild(connection.sendWith("six", { priority: 2 }), { startImmediately: true }),
              yield* Effect.forkChild(connection.sendWith("one", { priority: 1 }), { startImmediately: true })
            ]
            yield* Fiber.joinAll(fibers)
            yield* Deferred.succeed(finished, undefined)
          })
      })
      const client = yield* peerConnect(service.port)
      const received = yield* client.read(big.byteLength + "threetwosixone".length)
      yield* Deferred.await(finished)
      assert.strictEqual(
        received.subarray(0, big.byteLength).every((b) => b === 46),
        true
      )
      assert.strictEqual(received.subarray(big.byteLength).toString(), "threetwosixone")
    })
  )
})

onBothNetworks("output coalescing", (live) => {
  live("sends of one tick are written together, in priority order (diesel's test_pri_clean)", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        drainTimeout: "10 millis", // the conversations never end: do not wait the default 10 s at shutdown
        handler: (connection) =>
          Effect.gen(function* () {
            yield* connection.sendWith("two", { priority: 2 })
            yield* connection.sendWith("three", { priority: 3 })
            yield* connection.sendWith("six", { priority: 2 })
            yield* connection.sendWith("one", { priority: 1 })
            return yield* Effect.never
          })
      })
      const client = yield* peerConnect(service.port)
      assert.strictEqual((yield* client.read(14)).toString(), "threetwosixone")
    })
  )

  live("output is flushed when the conversation waits for something other than input", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        drainTimeout: "10 millis", // the conversations never end: do not wait the default 10 s at shutdown
        handler: Effect.andThen(Connection.send("hello\r\n"), Effect.never)
      })
      const client = yield* peerConnect(service.port)
      assert.strictEqual((yield* client.read(7)).toString(), "hello\r\n")
    })
  )

  live("a conversation that keeps sending without reading still gets its output out", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        drainTimeout: "10 millis", // the conversations never end: do not wait the default 10 s at shutdown
        handler: Effect.forever(Connection.send("tick\r\n"))
      })
      const client = yield* peerConnect(service.port)
      assert.strictEqual((yield* client.read(6000)).subarray(0, 12).toString(), "tick\r\ntick\r\n")
    })
  )
})

onBothNetworks("close", (live) => {
  live("close drains queued output, then closes", () =>
    Effect.gen(function* () {
      const payload = new Uint8Array(8 * MiB).fill(97)
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        handler: Effect.andThen(Connection.send(payload), Connection.close)
      })
      const client = yield* peerConnect(service.port)
      const received = yield* peerReadToEnd(client)
      assert.strictEqual(received.byteLength, payload.byteLength)
    })
  )

  live("the server reads a half-closed request to the end, then answers", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        handler: Effect.gen(function* () {
          let total = 0
          while (true) {
            const result = yield* Effect.result(Receive.receiveAny())
            if (result._tag === "Failure") break
            total += result.success.byteLength
          }
          yield* Connection.send(`got ${total} bytes`)
        })
      })
      const client = yield* peerConnect(service.port)
      yield* client.write("x".repeat(1000))
      yield* client.end
      const reply = yield* peerReadToEnd(client)
      assert.strictEqual(reply.toString(), "got 1000 bytes")
    })
  )
})

onBothNetworks("metrics", (live, _effect, network) => {
  live("connections and bytes in/out per service", () =>
    Effect.gen(function* () {
      const done = yield* Deferred.make<void>()
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        name: `metrics-test-${network}`,
        handler: Effect.gen(function* () {
          const line = yield* Receive.untilEol()
          yield* Connection.send(line)
          yield* Connection.send(line)
          yield* Deferred.succeed(done, undefined)
        })
      })
      const client = yield* peerConnect(service.port)
      yield* client.write("12345678\r\n")
      yield* client.read(20)
      yield* Deferred.await(done)
      const attrs = Metrics.attributes({ role: "server", service: `metrics-test-${network}` })
      const bytesIn = yield* Metric.value(Metric.withAttributes(Metrics.bytesIn, attrs))
      const bytesOut = yield* Metric.value(Metric.withAttributes(Metrics.bytesOut, attrs))
      const total = yield* Metric.value(Metric.withAttributes(Metrics.connectionsTotal, attrs))
      assert.strictEqual(bytesIn.count, 10)
      assert.strictEqual(bytesOut.count, 20)
      assert.strictEqual(total.count, 1)
    })
  )
})

// node only: these drive a raw node:net peer (a paused kernel socket; a half-open raw server)
describe("send and half-close with raw peers (node)", () => {
  it.live("waits while the peer does not read, and memory stays bounded", () =>
    Effect.gen(function* () {
      const opened = yield* Deferred.make<TCPConnection.TCPConnection>()
      const chunk = new Uint8Array(64 * 1024).fill(120)
      const total = 64 * MiB
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        handler: (connection) =>
          Effect.gen(function* () {
            yield* Deferred.succeed(opened, connection)
            for (let sent = 0; sent < total; sent += chunk.byteLength) yield* Connection.send(chunk)
            return "done"
          })
      })
      const client = yield* rawConnect(service.port)
      client.pause()
      const connection = yield* Deferred.await(opened)
      // the peer does not read: watch the sender for a while
      yield* Effect.sleep("300 millis")
      const handed = connection.bytesOut()
      assert.isBelow(handed, 16 * MiB, "the sender must wait for the slow peer")
      // now the peer reads everything, and the sender finishes
      const received = yield* rawRead(client, total)
      assert.strictEqual(received.byteLength, total)
      assert.strictEqual(connection.bytesOut(), total)
    })
  )

  it.live("a client half-closes and still receives", () =>
    Effect.gen(function* () {
      // a raw server that counts until EOF, then answers and closes
      const server = Net.createServer({ allowHalfOpen: true }, (socket) => {
        let total = 0
        socket.on("data", (chunk: Buffer) => {
          total += chunk.byteLength
        })
        socket.on("end", () => socket.end(`counted ${total}\r\n`))
      })
      yield* Effect.acquireRelease(
        Effect.callback<void>((resume) => {
          server.listen({ host: "127.0.0.1", port: 0 }, () => resume(Effect.void))
        }),
        () => Effect.sync(() => server.close())
      )
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const client = yield* TCPClient.connect({ host: "127.0.0.1", port })
      const reply = yield* TCPClient.call(
        client,
        Effect.gen(function* () {
          yield* Connection.send("y".repeat(5000))
          yield* client.halfClose
          const sendAfter = yield* Effect.exit(Connection.send("late"))
          assert.isTrue(Exit.isFailure(sendAfter))
          return text(yield* Receive.untilEol())
        })
      )
      assert.strictEqual(reply, "counted 5000\r\n")
    })
  )
})
