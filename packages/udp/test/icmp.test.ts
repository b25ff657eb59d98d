import { Connection, Network } from "@diesel/core"
import { UDPConnection, type UDPError } from "@diesel/udp"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as NetAddress from "effect/net/NetAddress"
import * as Scope from "effect/Scope"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import { bytes, type TestClient, testClient, text } from "./helpers.js"

const echoOnce = Effect.flatMap(UDPConnection.datagram, (datagram) => Connection.send(datagram.payload))

/** A peer whose socket the test closes: its port is then closed, and the server's datagrams to it bounce. */
const closablePeer = (host = "127.0.0.1") =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const client = yield* Scope.provide(testClient(host), scope)
    return { client, close: Scope.close(scope, Exit.void) }
  })

const exchange = (client: TestClient, server: UDPConnection.UDPSocketService, message: string) =>
  Effect.andThen(client.send(server.localAddress, message), client.receiveText)

describe("UDPConnection server, icmp: report", () => {
  it.live.each(["127.0.0.1", "::1"])(
    "%s: a send to a closed port is reported to the conversation that sent it; another conversation keeps exchanging",
    (host) =>
      Effect.gen(function* () {
        const go = yield* Deferred.make<void>()
        const reported = yield* Deferred.make<UDPError.PeerUnreachableError | string>()
        const server = yield* UDPConnection.make({
          port: 0,
          host,
          icmp: "report",
          handler: Effect.gen(function* () {
            const first = yield* UDPConnection.datagram
            if (text(first.payload) !== "victim") {
              yield* Connection.send(first.payload)
              return yield* Effect.forever(echoOnce)
            }
            yield* Connection.send("ack")
            yield* Deferred.await(go)
            yield* Connection.send("are you there?")
            const outcome = yield* Effect.result(UDPConnection.datagram)
            yield* Deferred.succeed(
              reported,
              outcome._tag === "Failure" && outcome.failure._tag === "PeerUnreachableError"
                ? outcome.failure
                : `unexpected: ${outcome._tag}`
            )
            // the conversation goes on after the report: it can still send
            yield* Connection.send("still here")
          })
        })
        const other = yield* testClient(host)
        const victim = yield* closablePeer(host)
        assert.strictEqual(yield* exchange(other, server, "one"), "one")
        assert.strictEqual(yield* exchange(victim.client, server, "victim"), "ack")
        const victimPort = victim.client.address.port
        yield* victim.close
        yield* Deferred.succeed(go, undefined)
        const error = yield* Deferred.await(reported)
        assert.notStrictEqual(typeof error, "string", String(error))
        if (typeof error !== "string") {
          assert.strictEqual(error._tag, "PeerUnreachableError")
          assert.strictEqual(error.kind, "ConnectionRefused")
          assert.strictEqual(error.peer, host === "::1" ? `[::1]:${victimPort}` : `127.0.0.1:${victimPort}`)
        }
        for (const message of ["two", "three", "four"]) {
          assert.strictEqual(yield* exchange(other, server, message), message)
        }
        assert.strictEqual(server.stats.ended.failed, 0)
      })
  )

  it.live("dual stack (::): an IPv4 peer's closed port is reported too", () =>
    Effect.gen(function* () {
      const go = yield* Deferred.make<void>()
      const reported = yield* Deferred.make<string>()
      const server = yield* UDPConnection.make({
        port: 0,
        host: "::",
        family: "ipv6",
        icmp: "report",
        handler: Effect.gen(function* () {
          yield* UDPConnection.datagram
          yield* Connection.send("ack")
          yield* Deferred.await(go)
          yield* Connection.send("again")
          const outcome = yield* Effect.result(UDPConnection.datagram)
          yield* Deferred.succeed(
            reported,
            outcome._tag === "Failure" && outcome.failure._tag === "PeerUnreachableError"
              ? `${outcome.failure.kind} ${outcome.failure.peer}`
              : `unexpected: ${outcome._tag}`
          )
        })
      })
      const victim = yield* closablePeer()
      const to = NetAddress.inetAddressFromIpStringUnsafe("127.0.0.1", server.localAddress.port)
      yield* victim.client.send(to, "hi")
      assert.strictEqual(yield* victim.client.receiveText, "ack")
      const victimPort = victim.client.address.port
      yield* victim.close
      yield* Deferred.succeed(go, undefined)
      assert.strictEqual(yield* Deferred.await(reported), `ConnectionRefused [::ffff:127.0.0.1]:${victimPort}`)
    })
  )

  it.live("a peer's datagrams reach its conversation after it replied (through its watch socket)", () =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        icmp: "report",
        handler: UDPConnection.eachDatagram((datagram) => Connection.send(datagram.payload))
      })
      const clients = [yield* testClient("127.0.0.1"), yield* testClient("127.0.0.1"), yield* testClient("127.0.0.1")]
      for (let round = 0; round < 5; round++) {
        for (const [i, client] of clients.entries()) {
          assert.strictEqual(yield* exchange(client, server, `${i}/${round}`), `${i}/${round}`)
        }
      }
      assert.strictEqual(yield* server.size, 3)
      const conversations = yield* server.conversations
      for (const conversation of conversations) {
        assert.strictEqual(conversation.received, 5)
        assert.strictEqual(conversation.sent, 5)
      }
    })
  )

  it.live("peers sending while watch sockets open: every datagram reaches its own conversation", () =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        icmp: "report",
        handler: UDPConnection.eachDatagram((datagram) => Connection.send(datagram.payload))
      })
      const peers = 16
      const each = 10
      const clients = yield* Effect.forEach(Array.from({ length: peers }), () => testClient("127.0.0.1"))
      const received = yield* Effect.forEach(
        clients,
        (client, i) =>
          Effect.gen(function* () {
            for (let j = 0; j < each; j++) yield* client.send(server.localAddress, `${i}/${j}`)
            const echoes: Array<string> = []
            for (let j = 0; j < each; j++) echoes.push(yield* client.receiveText)
            return echoes.sort()
          }),
        { concurrency: "unbounded" }
      )
      received.forEach((echoes, i) => {
        assert.deepStrictEqual(echoes, Array.from({ length: each }, (_, j) => `${i}/${j}`).sort())
      })
      assert.strictEqual(server.stats.started, peers)
      assert.strictEqual(server.stats.datagramsIn, peers * each)
    })
  )

  it.live("datagrams of other peers that land on a watch socket (before its connect) reach their conversations", () => {
    // Linux queues on a watch socket what arrives between its bind and its connect, from any peer; that window is
    // too short to hit on purpose, so the network here hands the first watch socket such datagrams itself.
    const injected: Array<DatagramSocket.Datagram> = []
    const network: Network.NetworkService = {
      ...Network.node,
      datagramSocket: (options) =>
        Effect.map(Network.node.datagramSocket(options), (socket) =>
          options.connect === undefined
            ? socket
            : {
                ...socket,
                reader: Effect.map(socket.reader, (reader) => ({
                  ...reader,
                  pull: Effect.suspend(() => {
                    const [first, ...rest] = injected.splice(0)
                    return first === undefined ? reader.pull : Effect.succeed([first, ...rest] as const)
                  })
                }))
              }
        )
    }
    const from = (client: TestClient, payload: string): DatagramSocket.Datagram & { host: string; port: number } => ({
      payload: bytes(payload),
      address: client.address,
      host: "127.0.0.1",
      port: client.address.port
    })
    return Effect.gen(function* () {
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        icmp: "report",
        handler: UDPConnection.eachDatagram((datagram) => Connection.send(datagram.payload))
      })
      const other = yield* testClient("127.0.0.1")
      const newcomer = yield* testClient("127.0.0.1")
      const watched = yield* testClient("127.0.0.1")
      assert.strictEqual(yield* exchange(other, server, "o1"), "o1")
      injected.push(from(other, "o2"), from(newcomer, "n1"))
      assert.strictEqual(yield* exchange(watched, server, "w1"), "w1")
      assert.strictEqual(yield* other.receiveText, "o2")
      assert.strictEqual(yield* newcomer.receiveText, "n1")
      assert.strictEqual(server.stats.started, 3)
      assert.strictEqual(injected.length, 0)
    }).pipe(Network.provide(network))
  })

  it.live("a conversation that ended closes its watch socket: the peer's next datagram starts a new one", () =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", icmp: "report", handler: echoOnce })
      const client = yield* testClient("127.0.0.1")
      assert.strictEqual(yield* exchange(client, server, "a"), "a")
      assert.strictEqual(yield* exchange(client, server, "b"), "b")
      assert.strictEqual(yield* exchange(client, server, "c"), "c")
      assert.strictEqual(server.stats.started, 3)
    })
  )

  it.live("without icmp: report, a send to a closed port goes unnoticed and the conversation carries on", () =>
    Effect.gen(function* () {
      const go = yield* Deferred.make<void>()
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        handler: Effect.gen(function* () {
          yield* echoOnce
          yield* Deferred.await(go)
          yield* Connection.send("into the void")
          yield* echoOnce
        })
      })
      const victim = yield* closablePeer()
      assert.strictEqual(yield* exchange(victim.client, server, "hi"), "hi")
      yield* victim.close
      yield* Deferred.succeed(go, undefined)
      const other = yield* testClient("127.0.0.1")
      assert.strictEqual(yield* exchange(other, server, "x"), "x")
      assert.strictEqual(yield* server.size, 2)
    })
  )
})
