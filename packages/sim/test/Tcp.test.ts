import { Network } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Fiber, Ref, Schedule } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import * as Socket from "effect/socket/Socket"
import { TestClock } from "effect/testing"
import { SimNetwork } from "../src/index.js"
import { bytes, causeCode, readAll, readBytes, tcpEcho, text } from "./helpers.js"

const sim = (options?: SimNetwork.Options) =>
  Effect.provide(SimNetwork.layer({ seed: 3, hosts: ["client", "server"], ...options }))

const connect = (host: string, port: number, options?: Partial<Network.ConnectOptions>) =>
  Effect.gen(function* () {
    const network = yield* Network.Network
    const socket = yield* network.connect({ host, port, ...options })
    const reader = yield* socket.reader
    const writer = yield* socket.writer
    return { socket, reader, writer }
  })

describe("simulated TCP", () => {
  it.effect("connects by host name and echoes, in simulated time", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("client", "server", { latency: "10 millis" })
      const port = yield* SimNetwork.onHost("server")(tcpEcho(7000))
      const fiber = yield* Effect.forkChild(
        SimNetwork.onHost("client")(
          Effect.gen(function* () {
            const connection = yield* connect("server", port)
            yield* connection.writer.write("hello")
            return text(yield* readBytes(connection.reader.pull, 5))
          }).pipe(Effect.scoped)
        )
      )
      // handshake (SYN, SYN-ACK) 20 ms, then data and its echo 20 ms
      yield* TestClock.adjust("39 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(fiber), "hello")
    }).pipe(sim())
  )

  it.effect("a megabyte arrives intact and in order over a link with 20% loss, reordering and duplication", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("client", "server", {
        latency: "20 millis",
        jitter: "5 millis",
        loss: 0.2,
        reorder: 0.1,
        duplicate: 0.05,
        mtu: 1500
      })
      const port = yield* SimNetwork.onHost("server")(tcpEcho())
      const payload = new Uint8Array(1024 * 1024)
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 7919) & 255
      const echoed = yield* sim.run(
        SimNetwork.onHost("client")(
          Effect.gen(function* () {
            const connection = yield* connect("server", port)
            const reading = yield* Effect.forkChild(readBytes(connection.reader.pull, payload.length))
            for (let offset = 0; offset < payload.length; offset += 10_000) {
              yield* connection.writer.write(payload.subarray(offset, offset + 10_000))
            }
            return yield* Fiber.join(reading)
          }).pipe(Effect.scoped)
        ),
        { timeout: "10 minutes" }
      )
      assert.strictEqual(echoed.length, payload.length)
      assert.isTrue(echoed.every((byte, i) => byte === payload[i]))
      const stats = yield* sim.stats
      assert.isAbove(stats.dropped.loss, 100)
      // segments respect the MTU
      const largest = Math.max(...(yield* sim.trace).map((event) => event.packet.payload.byteLength))
      assert.isAtMost(largest, 1460)
    }).pipe(sim())
  )

  it.effect("a connection to a port nobody listens on is refused", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("client", "server", { latency: "1 millis" })
      const error = yield* SimNetwork.onHost("client")(connect("server", 4444)).pipe(
        Effect.scoped,
        Effect.flip,
        sim.run
      )
      assert.strictEqual(error.reason._tag, "SocketOpenError")
      assert.strictEqual(causeCode(error), "ECONNREFUSED")
    }).pipe(sim())
  )

  it.effect("a connect timeout fails with a SocketOpenError of kind Timeout", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* SimNetwork.onHost("server")(tcpEcho(7000))
      yield* sim.partition("client", "server")
      const error = yield* SimNetwork.onHost("client")(connect("server", 7000, { timeout: "2 seconds" })).pipe(
        Effect.scoped,
        Effect.flip,
        sim.run
      )
      assert.strictEqual(error.reason._tag, "SocketOpenError")
      if (error.reason._tag === "SocketOpenError") assert.strictEqual(error.reason.kind, "Timeout")
    }).pipe(sim())
  )

  it.effect("half-close: the server reads to end of stream, then answers, then closes", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("client", "server", { latency: "3 millis", loss: 0.1 })
      const network = yield* Network.Network
      const server = yield* SimNetwork.onHost("server")(network.listen({ port: 8000 }))
      yield* Effect.forkScoped(
        SimNetwork.onHost("server")(
          server.run((socket) =>
            Effect.gen(function* () {
              const reader = yield* socket.reader
              const request = yield* readAll(reader.pull)
              const writer = yield* socket.writer
              yield* writer.write(`got ${request.length} bytes`)
            }).pipe(Effect.scoped, Effect.ignore)
          )
        )
      )
      const answer = yield* sim.run(
        SimNetwork.onHost("client")(
          Effect.gen(function* () {
            const socket = yield* network.connect({ host: "server", port: 8000 })
            const reader = yield* socket.reader
            yield* Effect.scoped(
              Effect.gen(function* () {
                const writer = yield* socket.writer
                yield* writer.write("x".repeat(5000))
              })
            )
            return yield* readAll(reader.pull)
          }).pipe(Effect.scoped)
        )
      )
      assert.strictEqual(answer, "got 5000 bytes")
    }).pipe(sim())
  )

  it.effect("an interrupted pull loses no bytes", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      const port = yield* SimNetwork.onHost("server")(tcpEcho(7000))
      const connection = yield* SimNetwork.onHost("client")(connect("server", port))
      const pending = yield* Effect.forkChild(connection.reader.pull, { startImmediately: true })
      yield* Fiber.interrupt(pending)
      yield* connection.writer.write("abc")
      yield* sim.runUntilIdle()
      assert.strictEqual(text(yield* readBytes(connection.reader.pull, 3)), "abc")
    }).pipe(sim())
  )

  it.effect("writing a CloseEvent ends the local reads with code 1000 and the peer sees end of stream", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      const network = yield* Network.Network
      const server = yield* SimNetwork.onHost("server")(network.listen({ port: 8001 }))
      const seen = yield* Deferred.make<string, Socket.SocketError>()
      yield* Effect.forkScoped(
        SimNetwork.onHost("server")(
          server.run((socket) =>
            Effect.gen(function* () {
              const reader = yield* socket.reader
              yield* Deferred.complete(seen, readAll(reader.pull))
            }).pipe(Effect.scoped)
          )
        )
      )
      const connection = yield* SimNetwork.onHost("client")(connect("server", 8001))
      yield* connection.writer.write("bye")
      yield* connection.writer.write(new Socket.CloseEvent(1000))
      const local = yield* Effect.flip(connection.reader.pull)
      assert.strictEqual(local.reason._tag, "SocketCloseError")
      assert.strictEqual(yield* sim.run(Deferred.await(seen)), "bye")
      const late = yield* Effect.flip(connection.writer.write("more"))
      assert.strictEqual(late.reason._tag, "SocketWriteError")
    }).pipe(sim())
  )

  it.effect("a partition ends the connection after the configured timeout; after repair the client reconnects", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("client", "server", { latency: "5 millis" })
      const port = yield* SimNetwork.onHost("server")(tcpEcho(7000))
      const connection = yield* sim.run(SimNetwork.onHost("client")(connect("server", port)))
      yield* connection.writer.write("one")
      assert.strictEqual(text(yield* sim.run(readBytes(connection.reader.pull, 3))), "one")

      yield* sim.partition("client", "server")
      const started = yield* Clock.currentTimeMillis
      yield* connection.writer.write("two")
      const error = yield* sim.run(Effect.flip(connection.reader.pull))
      const failedAt = yield* Clock.currentTimeMillis
      assert.strictEqual(error.reason._tag, "SocketReadError")
      assert.strictEqual(causeCode(error), "ETIMEDOUT")
      // the configured connection timeout (5 s), within one retransmission
      assert.isAtLeast(failedAt - started, 5000)
      assert.isBelow(failedAt - started, 5001)

      yield* sim.repair("client", "server")
      const again = yield* sim.run(
        SimNetwork.onHost("client")(
          Effect.gen(function* () {
            const fresh = yield* connect("server", port)
            yield* fresh.writer.write("three")
            return text(yield* readBytes(fresh.reader.pull, 5))
          }).pipe(Effect.scoped)
        )
      )
      assert.strictEqual(again, "three")
    }).pipe(sim({ tcp: { connectionTimeout: "5 seconds" } }))
  )

  it.effect("keep-alive probes end an idle connection across a partition", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      const port = yield* SimNetwork.onHost("server")(tcpEcho(7000))
      const connection = yield* SimNetwork.onHost("client")(connect("server", port))
      yield* sim.partition("client", "server")
      const error = yield* sim.run(Effect.flip(connection.reader.pull))
      assert.strictEqual(causeCode(error), "ETIMEDOUT")
      assert.isAtMost(yield* Clock.currentTimeMillis, 1000 + 3000 + 1)
    }).pipe(sim({ tcp: { connectionTimeout: "3 seconds", keepAlive: "1 second" } }))
  )

  it.effect("a slow reader makes the writer wait (flow control), without a timeout", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      const network = yield* Network.Network
      const server = yield* SimNetwork.onHost("server")(network.listen({ port: 8002 }))
      const accepted = yield* Deferred.make<Socket.Socket>()
      yield* Effect.forkScoped(
        SimNetwork.onHost("server")(
          server.run((socket) => Effect.andThen(Deferred.succeed(accepted, socket), Effect.never))
        )
      )
      const connection = yield* SimNetwork.onHost("client")(connect("server", 8002))
      const written = yield* Ref.make(0)
      const writing = yield* Effect.forkChild(
        Effect.forever(
          Effect.andThen(
            connection.writer.write(new Uint8Array(16 * 1024)),
            Ref.update(written, (n) => n + 16 * 1024)
          )
        )
      )
      yield* TestClock.adjust("2 minutes")
      const stalled = yield* Ref.get(written)
      // bounded by the receive window plus the send buffer
      assert.isAtMost(stalled, 512 * 1024 + 16 * 1024)
      assert.isUndefined(writing.pollUnsafe())
      const socket = yield* Deferred.await(accepted)
      const reader = yield* socket.reader
      yield* sim.run(readBytes(reader.pull, 1024 * 1024))
      assert.isAbove(yield* Ref.get(written), stalled)
      yield* Fiber.interrupt(writing)
    }).pipe(sim({ tcp: { connectionTimeout: "10 seconds" } }))
  )

  it.effect("a crashed server host resets its connections; restarted, it serves again and clients recover", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("client", "server", { latency: "2 millis" })
      yield* sim.spawn("server", Effect.andThen(tcpEcho(7000), Effect.never).pipe(Effect.scoped))
      const session = (message: string) =>
        SimNetwork.onHost("client")(
          Effect.gen(function* () {
            const connection = yield* connect("server", 7000)
            yield* connection.writer.write(message)
            return text(yield* readBytes(connection.reader.pull, message.length))
          }).pipe(Effect.scoped)
        )
      // a client that retries its session until it succeeds
      const resilient = (message: string) =>
        session(message).pipe(Effect.retry({ times: 20, schedule: Schedule.spaced("100 millis") }))
      assert.strictEqual(yield* sim.run(resilient("before")), "before")

      const connection = yield* sim.run(SimNetwork.onHost("client")(connect("server", 7000)))
      yield* sim.crash("server")
      const error = yield* sim.run(Effect.flip(connection.reader.pull))
      assert.strictEqual(causeCode(error), "ECONNRESET")

      const recovered = yield* Effect.forkChild(sim.run(resilient("after")))
      yield* sim.run(Effect.sleep("1 second"))
      assert.isUndefined(recovered.pollUnsafe())
      yield* sim.restart("server")
      assert.strictEqual(yield* Fiber.join(recovered), "after")
    }).pipe(sim())
  )

  it.effect("a power cut (crash without reset) is noticed by timeout, and after restart by RST", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.spawn("server", Effect.andThen(tcpEcho(7000), Effect.never).pipe(Effect.scoped))
      yield* sim.runUntilIdle()
      const connection = yield* SimNetwork.onHost("client")(connect("server", 7000))
      yield* sim.crash("server", { reset: false })
      yield* sim.restart("server")
      yield* connection.writer.write("anyone?")
      const error = yield* sim.run(Effect.flip(connection.reader.pull))
      assert.strictEqual(causeCode(error), "ECONNRESET")
    }).pipe(sim())
  )

  it.effect("listen reports its address and refuses a port in use", () =>
    Effect.gen(function* () {
      const network = yield* Network.Network
      const server = yield* SimNetwork.onHost("server")(network.listen({ host: "0.0.0.0", port: 9000 }))
      assert.isTrue(NetAddress.isInetAddress(server.address))
      const error = yield* Effect.flip(SimNetwork.onHost("server")(network.listen({ port: 9000 })))
      assert.strictEqual(error._tag, "SocketServerError")
      // the same port on another host is fine
      yield* SimNetwork.onHost("client")(network.listen({ port: 9000 }))
      assert.strictEqual(bytes("x").length, 1)
    }).pipe(sim())
  )
})
