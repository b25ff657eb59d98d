import { Connection, Network } from "@diesel/core"
import { UDPConnection } from "@diesel/udp"
import { assert } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as NetAddress from "effect/net/NetAddress"
import { onBothNetworks, testClient, text } from "./helpers.js"

const echo = Effect.forever(Effect.flatMap(UDPConnection.datagram, (datagram) => Connection.send(datagram.payload)))

/** A port nobody listens on: bind a socket, note its port, close it. */
const closedPort = (host: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const socket = yield* (yield* Network.Network).datagramSocket({ bind: { address: host, port: 0 } })
      const reader = yield* socket.reader
      return reader.address.port
    })
  )

onBothNetworks("UDPConnection client", (live) => {
  live("connect runs one conversation with the server (host name resolved) and returns its result", () =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler: echo })
      const reply = yield* UDPConnection.connect(
        { host: "localhost", port: server.localAddress.port, family: "ipv4" },
        Effect.gen(function* () {
          yield* Connection.send("ping")
          const datagram = yield* UDPConnection.datagram
          const peer = yield* UDPConnection.peer
          return `${text(datagram.payload)} from ${NetAddress.formatInet(peer)}`
        })
      )
      assert.strictEqual(reply, `ping from 127.0.0.1:${server.localAddress.port}`)
    })
  )

  live("the handler's failure is the failure of connect", () =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler: echo })
      const error = yield* Effect.flip(
        UDPConnection.connect({ host: "127.0.0.1", port: server.localAddress.port }, Effect.fail("nope" as const))
      )
      assert.strictEqual(error, "nope")
    })
  )

  live("datagrams from any other source never reach the client conversation", () =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler: echo })
      const go = yield* Deferred.make<void>()
      const first = yield* Deferred.make<string>()
      const client = yield* UDPConnection.makeClient({
        host: "127.0.0.1",
        port: server.localAddress.port,
        localAddress: "127.0.0.1",
        handler: Effect.gen(function* () {
          yield* Deferred.await(go)
          yield* Connection.send("from the client")
          const datagram = yield* UDPConnection.datagram
          yield* Deferred.succeed(first, text(datagram.payload))
        })
      })
      const stranger = yield* testClient()
      yield* stranger.send(client.localAddress, "spoofed")
      const otherServer = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler: echo })
      yield* otherServer.sendTo("another server", client.localAddress)
      yield* Deferred.succeed(go, undefined)
      assert.strictEqual(yield* Deferred.await(first), "from the client")
      assert.strictEqual(yield* client.ended, "completed")
      assert.strictEqual(client.stats.datagramsIn, 1)
    })
  )

  live("IPv6 client", () =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({ port: 0, host: "::1", handler: echo })
      const reply = yield* UDPConnection.connect(
        { host: "::1", port: server.localAddress.port },
        Effect.gen(function* () {
          yield* Connection.send("v6")
          return text((yield* UDPConnection.datagram).payload)
        })
      )
      assert.strictEqual(reply, "v6")
    })
  )

  live("an ICMP port unreachable is reported to the conversation that sent, which keeps running", () =>
    Effect.gen(function* () {
      const port = yield* closedPort("127.0.0.1")
      const result = yield* UDPConnection.connect(
        { host: "127.0.0.1", port },
        Effect.gen(function* () {
          yield* Connection.send("anyone there?")
          const error = yield* Effect.flip(UDPConnection.datagram)
          // the conversation and its socket survive: it can keep sending
          yield* Connection.send("still here")
          const again = yield* Effect.flip(UDPConnection.datagram)
          return [error, again] as const
        })
      )
      for (const error of result) {
        assert.strictEqual(error._tag, "PeerUnreachableError")
        if (error._tag === "PeerUnreachableError") {
          assert.strictEqual(error.kind, "ConnectionRefused")
          assert.strictEqual(error.peer, `127.0.0.1:${port}`)
        }
      }
    })
  )

  live("after an ICMP error the same conversation reaches a server that appears on that port", () =>
    Effect.gen(function* () {
      const port = yield* closedPort("127.0.0.1")
      const unreachable = yield* Deferred.make<void>()
      const serverUp = yield* Deferred.make<void>()
      const client = UDPConnection.connect(
        { host: "127.0.0.1", port },
        Effect.gen(function* () {
          yield* Connection.send("hello?")
          const error = yield* Effect.flip(UDPConnection.datagram)
          yield* Deferred.succeed(unreachable, undefined)
          yield* Deferred.await(serverUp)
          yield* Connection.send("hello again")
          const reply = text((yield* UDPConnection.datagram).payload)
          return [error._tag, reply] as const
        })
      )
      const fiber = yield* Effect.forkChild(client)
      yield* Deferred.await(unreachable)
      // the port was free a moment ago: a server binds it now
      yield* UDPConnection.make({ port, host: "127.0.0.1", handler: echo })
      yield* Deferred.succeed(serverUp, undefined)
      const [tag, reply] = yield* Fiber.join(fiber)
      assert.strictEqual(tag, "PeerUnreachableError")
      assert.strictEqual(reply, "hello again")
    })
  )

  live("a name that does not resolve is a BindError", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(UDPConnection.connect({ host: "no-such-host.invalid", port: 9 }, Effect.void))
      assert.strictEqual(error._tag, "BindError")
      if (error._tag === "BindError") assert.strictEqual(error.kind, "ResolveFailed")
    })
  )
})
