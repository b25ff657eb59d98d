import { Network } from "@diesel/core"
import { assert, expect } from "@effect/vitest"
import { Deferred, Effect, Exit, Scope } from "effect"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import { onBothNetworks } from "../src/Vitest.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

interface Received {
  readonly text: string
  readonly host: string
  readonly port: number
}

/** Events that record packets and errors, and complete `first` with the first packet. */
const recorder = Effect.gen(function* () {
  const first = yield* Deferred.make<Received>()
  const packets: Array<Received> = []
  const errors: Array<DatagramSocket.DatagramSocketError> = []
  let closed = 0
  const events: DatagramSocket.BackingEvents = {
    onPacket: (payload, host, port) => {
      const received = { text: decoder.decode(payload), host, port }
      packets.push(received)
      Deferred.doneUnsafe(first, Exit.succeed(received))
    },
    onReadError: (error) => errors.push(error),
    onError: (error) => errors.push(error),
    onClose: () => {
      closed++
    }
  }
  return { events, packets, errors, first, closed: () => closed }
})

const send = (socket: DatagramSocket.BackingSocket, text: string, to?: DatagramSocket.BackingAddress) =>
  Effect.callback<void, DatagramSocket.DatagramSocketError>((resume) =>
    socket.send(encoder.encode(text), to, (error) => resume(error === undefined ? Effect.void : Effect.fail(error)))
  )

onBothNetworks("Network.openDatagram", (live) => {
  live("packets reach onPacket with their source; send reports completion", () =>
    Effect.gen(function* () {
      const net = yield* Network.Network
      const server = yield* recorder
      const serverSocket = yield* net.openDatagram({ bind: { address: "127.0.0.1" } }, server.events)
      const client = yield* recorder
      const clientSocket = yield* net.openDatagram({ bind: { address: "127.0.0.1" } }, client.events)
      assert.isAbove(serverSocket.address.port, 0)
      expect(serverSocket.connected).toBe(false)
      yield* send(clientSocket, "ping", serverSocket.address)
      const ping = yield* Deferred.await(server.first)
      expect(ping).toEqual({ text: "ping", host: "127.0.0.1", port: clientSocket.address.port })
      yield* send(serverSocket, "pong", { host: ping.host, port: ping.port })
      expect((yield* Deferred.await(client.first)).text).toBe("pong")
    })
  )

  live("a connected socket sends without a destination and hears only its peer", () =>
    Effect.gen(function* () {
      const net = yield* Network.Network
      const server = yield* recorder
      const serverSocket = yield* net.openDatagram({ bind: { address: "127.0.0.1" } }, server.events)
      const stranger = yield* net.openDatagram({ bind: { address: "127.0.0.1" } }, (yield* recorder).events)
      const client = yield* recorder
      const clientSocket = yield* net.openDatagram(
        { bind: { address: "127.0.0.1" }, connect: { address: "127.0.0.1", port: serverSocket.address.port } },
        client.events
      )
      expect(clientSocket.connected).toBe(true)
      yield* send(stranger, "from a stranger", clientSocket.address)
      yield* send(clientSocket, "hello")
      const hello = yield* Deferred.await(server.first)
      expect(hello.text).toBe("hello")
      yield* send(serverSocket, "reply", { host: hello.host, port: hello.port })
      expect((yield* Deferred.await(client.first)).text).toBe("reply")
      expect(client.packets.map((packet) => packet.text)).toEqual(["reply"])
    })
  )

  live("IPv6 works too", () =>
    Effect.gen(function* () {
      const net = yield* Network.Network
      const server = yield* recorder
      const serverSocket = yield* net.openDatagram({ family: "ipv6", bind: { address: "::1" } }, server.events)
      const clientSocket = yield* net.openDatagram(
        { family: "ipv6", bind: { address: "::1" } },
        (yield* recorder).events
      )
      yield* send(clientSocket, "six", { host: "::1", port: serverSocket.address.port })
      expect(yield* Deferred.await(server.first)).toEqual({ text: "six", host: "::1", port: clientSocket.address.port })
    })
  )

  live("an oversized datagram fails its send with a typed error; the socket stays usable", () =>
    Effect.gen(function* () {
      const net = yield* Network.Network
      const server = yield* recorder
      const serverSocket = yield* net.openDatagram({ bind: { address: "127.0.0.1" } }, server.events)
      const clientSocket = yield* net.openDatagram({ bind: { address: "127.0.0.1" } }, (yield* recorder).events)
      const tooBig = yield* Effect.flip(send(clientSocket, "x".repeat(70_000), serverSocket.address))
      expect(tooBig._tag).toBe("DatagramSocketError")
      expect(tooBig.reason._tag).toBe("DatagramSocketWriteError")
      yield* send(clientSocket, "small", serverSocket.address)
      expect((yield* Deferred.await(server.first)).text).toBe("small")
    })
  )

  live("a port in use is a typed open error; closing the scope frees the port", () =>
    Effect.gen(function* () {
      const net = yield* Network.Network
      const scope = yield* Scope.make()
      const first = yield* recorder
      const socket = yield* net
        .openDatagram({ bind: { address: "127.0.0.1" } }, first.events)
        .pipe(Scope.provide(scope))
      const port = socket.address.port
      const taken = yield* Effect.flip(
        net.openDatagram({ bind: { address: "127.0.0.1", port } }, (yield* recorder).events)
      )
      expect(taken.reason._tag).toBe("DatagramSocketOpenError")
      if (taken.reason._tag === "DatagramSocketOpenError") expect(taken.reason.kind).toBe("AddressInUse")
      yield* Scope.close(scope, Exit.void)
      // Closed by us: no onClose report.
      expect(first.closed()).toBe(0)
      const again = yield* net.openDatagram({ bind: { address: "127.0.0.1", port } }, (yield* recorder).events)
      expect(again.address.port).toBe(port)
    })
  )
})
