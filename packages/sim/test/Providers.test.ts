/**
 * The same seam-level cases against the Node network and the simulated one: what the transports see
 * must not depend on which network they run on.
 */
import { Network } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import * as Socket from "effect/socket/Socket"
import { SimNetwork } from "../src/index.js"
import { causeCode, inet, readAll, readBytes, tcpEcho, text, udpEcho, udpSocket } from "./helpers.js"

for (const { name, provide: provider } of SimNetwork.providers({ seed: 1 })) {
  describe(`seam cases on the ${name} network`, () => {
    it.live("UDP echo over 127.0.0.1", () =>
      Effect.gen(function* () {
        const port = yield* udpEcho(0)
        const client = yield* udpSocket({ bind: { address: "127.0.0.1", port: 0 } })
        yield* client.writer.write({ payload: "ping", address: inet("127.0.0.1", port) })
        const [reply] = yield* client.reader.pull
        assert.strictEqual(text(reply.payload), "ping")
        assert.strictEqual(reply.address.port, port)
        assert.strictEqual(NetAddress.formatHost(reply.address), "127.0.0.1")
      }).pipe(provider)
    )

    it.live("UDP bind on a port in use fails with AddressInUse", () =>
      Effect.gen(function* () {
        const first = yield* udpSocket({ bind: { address: "127.0.0.1", port: 0 } })
        const error = yield* Effect.flip(udpSocket({ bind: { address: "127.0.0.1", port: first.reader.address.port } }))
        assert.strictEqual(error.reason._tag, "DatagramSocketOpenError")
        if (error.reason._tag === "DatagramSocketOpenError") assert.strictEqual(error.reason.kind, "AddressInUse")
      }).pipe(provider)
    )

    it.live("TCP echo over 127.0.0.1 with half-close", () =>
      Effect.gen(function* () {
        const network = yield* Network.Network
        const port = yield* tcpEcho(0)
        const socket = yield* network.connect({ host: "127.0.0.1", port })
        const reader = yield* socket.reader
        yield* Effect.scoped(Effect.flatMap(socket.writer, (writer) => writer.write("hello over tcp")))
        assert.strictEqual(text(yield* readBytes(reader.pull, 14)), "hello over tcp")
        // the echo server saw our FIN, ended its loop and closed: end of stream
        assert.strictEqual(yield* readAll(reader.pull), "")
      }).pipe(provider)
    )

    it.live("TCP connect to a closed port is refused", () =>
      Effect.gen(function* () {
        const network = yield* Network.Network
        const port = yield* Effect.scoped(
          Effect.map(network.listen({ host: "127.0.0.1", port: 0 }), (server) =>
            NetAddress.isInetAddress(server.address) ? server.address.port : 0
          )
        )
        const socket = yield* network.connect({ host: "127.0.0.1", port })
        const error = yield* Effect.flip(Effect.scoped(socket.reader))
        assert.strictEqual(error.reason._tag, "SocketOpenError")
        assert.strictEqual(causeCode(error), "ECONNREFUSED")
      }).pipe(provider)
    )

    it.live("a write still waiting (the peer does not read) fails when the socket is destroyed", () =>
      Effect.gen(function* () {
        const network = yield* Network.Network
        const server = yield* network.listen({ host: "127.0.0.1", port: 0 })
        const port = NetAddress.isInetAddress(server.address) ? server.address.port : 0
        // the server accepts and never reads
        yield* Effect.forkScoped(server.run((socket) => Effect.scoped(Effect.andThen(socket.reader, Effect.never))))
        const socket = yield* network.connect({ host: "127.0.0.1", port })
        yield* socket.reader
        const writer = yield* socket.writer
        const chunk = new Uint8Array(1024 * 1024)
        // far more than the kernel's (or the simulation's) buffers: some write waits
        const writing = yield* Effect.forkChild(
          Effect.gen(function* () {
            for (let i = 0; i < 256; i++) yield* writer.write(chunk)
          }),
          { startImmediately: true }
        )
        yield* writer.write(new Socket.CloseEvent(1000))
        const exit = yield* Fiber.await(writing)
        assert.isTrue(Exit.isFailure(exit), "the waiting write fails")
      }).pipe(Effect.scoped, provider)
    )

    it.live("lookup of localhost", () =>
      Effect.gen(function* () {
        const network = yield* Network.Network
        const addresses = yield* network.lookup("localhost", { family: "IPv4" })
        assert.deepStrictEqual(addresses.map(NetAddress.formatIp), ["127.0.0.1"])
      }).pipe(provider)
    )
  })
}
