import { ConnectedLoop, Connection, Event, Loop } from "@diesel/core"
import { UDPConnection } from "@diesel/udp"
import { assert } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as NetAddress from "effect/net/NetAddress"
import { bytes, onBothNetworks, testClient, text } from "./helpers.js"

const echo = Effect.forever(Effect.flatMap(UDPConnection.datagram, (datagram) => Connection.send(datagram.payload)))

onBothNetworks("UDPConnection server", (live) => {
  live("echoes per peer, one conversation each, replies go to the right peer", () =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler: echo })
      const a = yield* testClient()
      const b = yield* testClient()
      yield* a.send(server.localAddress, "a1")
      yield* b.send(server.localAddress, "b1")
      yield* a.send(server.localAddress, "a2")
      assert.strictEqual(yield* a.receiveText, "a1")
      assert.strictEqual(yield* a.receiveText, "a2")
      assert.strictEqual(yield* b.receiveText, "b1")
      const table = yield* server.conversations
      assert.strictEqual(table.length, 2)
      const peers = table.map((info) => NetAddress.formatInet(info.peer)).sort()
      assert.deepStrictEqual(peers, [NetAddress.formatInet(a.address), NetAddress.formatInet(b.address)].sort())
      assert.deepStrictEqual(table.map((info) => info.received).sort(), [1, 2], "a sent two datagrams, b one")
      assert.strictEqual(server.stats.started, 2)
      assert.strictEqual(server.stats.datagramsIn, 3)
      assert.strictEqual(server.stats.datagramsOut, 3)
    })
  )

  live("the handler sees its peer, forked children send on the same conversation, first races a sleep", () =>
    Effect.gen(function* () {
      const handler = Effect.gen(function* () {
        yield* Loop.label("greeter")
        const peer = yield* UDPConnection.peer
        const hello = yield* UDPConnection.datagram
        yield* ConnectedLoop.forkChild(Connection.send(`child saw ${NetAddress.formatInet(peer)}`))
        yield* Connection.send(`parent got ${text(hello.payload)}`)
        const outcome = yield* Event.first({ receive: UDPConnection.datagramOp, sleep: "20 millis" })
        yield* Connection.send(outcome._tag)
        const second = yield* Event.first({ receive: UDPConnection.datagramOp, sleep: "10 seconds" })
        yield* Connection.send(second._tag === "Receive" ? `then ${text(second.value.payload)}` : second._tag)
        const labels = (yield* Loop.list).map((info) => info.label)
        yield* Connection.send(labels.includes("greeter") ? "labelled" : "unlabelled")
      })
      const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler })
      const client = yield* testClient()
      yield* client.send(server.localAddress, "hi")
      const replies = [yield* client.receiveText, yield* client.receiveText].sort()
      assert.deepStrictEqual(replies, [`child saw ${NetAddress.formatInet(client.address)}`, "parent got hi"].sort())
      assert.strictEqual(yield* client.receiveText, "Sleep")
      yield* client.send(server.localAddress, "more")
      assert.strictEqual(yield* client.receiveText, "then more")
      assert.strictEqual(yield* client.receiveText, "labelled")
    })
  )

  live("delivers a burst in order", () =>
    Effect.gen(function* () {
      const count = 2000
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        handler: echo,
        mailbox: { capacity: count }
      })
      const client = yield* testClient()
      const received: Array<number> = []
      // windows of 100: enough for the server to read them in batches, few enough for the kernel buffers
      for (let window = 0; window < count; window += 100) {
        for (let i = window; i < window + 100; i++) yield* client.send(server.localAddress, String(i))
        for (let i = window; i < window + 100; i++) received.push(Number(yield* client.receiveText))
      }
      assert.deepStrictEqual(
        received,
        Array.from({ length: count }, (_, i) => i)
      )
      assert.strictEqual(server.stats.dropped.mailboxFull, 0)
    })
  )

  live("a 0-byte datagram is a datagram", () =>
    Effect.gen(function* () {
      const seen = yield* Deferred.make<number>()
      const handler = Effect.gen(function* () {
        const datagram = yield* UDPConnection.datagram
        yield* Deferred.succeed(seen, datagram.payload.byteLength)
        yield* Connection.send(new Uint8Array(0))
        yield* Connection.send("after")
      })
      const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler })
      const client = yield* testClient()
      yield* client.send(server.localAddress, new Uint8Array(0))
      assert.strictEqual(yield* Deferred.await(seen), 0)
      assert.strictEqual((yield* client.receive).payload.byteLength, 0)
      assert.strictEqual(yield* client.receiveText, "after")
    })
  )

  live("datagrams of 65,507 bytes arrive whole (IPv4)", () =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        handler: echo,
        kernelReceiveBufferSize: 1024 * 1024
      })
      const client = yield* testClient()
      const payload = new Uint8Array(65_507)
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff
      yield* client.send(server.localAddress, payload)
      const back = yield* client.receive
      assert.strictEqual(back.payload.byteLength, 65_507)
      assert.deepStrictEqual(back.payload, payload)
    })
  )

  live("IPv6: serves peers on ::1", () =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({ port: 0, host: "::1", handler: echo })
      assert.isTrue(NetAddress.isInetAddressV6(server.localAddress))
      const client = yield* testClient("::1")
      yield* client.send(server.localAddress, "six")
      assert.strictEqual(yield* client.receiveText, "six")
      const [info] = yield* server.conversations
      assert.isDefined(info)
      if (info !== undefined)
        assert.strictEqual(NetAddress.formatInet(info.peer), NetAddress.formatInet(client.address))
      const big = new Uint8Array(65_000).fill(6)
      yield* client.send(server.localAddress, big)
      assert.deepStrictEqual((yield* client.receive).payload, big)
    })
  )

  live("a handler that fails or dies ends its own conversation only", () =>
    Effect.gen(function* () {
      const handler = Effect.forever(
        Effect.gen(function* () {
          const datagram = yield* UDPConnection.datagram
          const body = text(datagram.payload)
          if (body === "fail") return yield* Effect.fail("failed on purpose")
          if (body === "die") return yield* Effect.die(new Error("died on purpose"))
          yield* Connection.send(`ok ${body}`)
        })
      )
      const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler })
      const steady = yield* testClient()
      const failing = yield* testClient()
      const dying = yield* testClient()
      yield* steady.send(server.localAddress, "1")
      assert.strictEqual(yield* steady.receiveText, "ok 1")
      yield* failing.send(server.localAddress, "x")
      assert.strictEqual(yield* failing.receiveText, "ok x")
      yield* failing.send(server.localAddress, "fail")
      yield* dying.send(server.localAddress, "die")
      // the steady conversation is untouched and keeps its state
      yield* steady.send(server.localAddress, "2")
      assert.strictEqual(yield* steady.receiveText, "ok 2")
      // a failed peer that talks again starts a new conversation
      yield* failing.send(server.localAddress, "again")
      assert.strictEqual(yield* failing.receiveText, "ok again")
      assert.strictEqual(server.stats.ended.failed, 2)
      assert.strictEqual(server.stats.started, 4)
      assert.strictEqual(yield* server.size, 2)
    })
  )

  live("a conversation sending to a peer that went away (ICMP port unreachable) does not disturb the socket", () =>
    Effect.gen(function* () {
      const gone = yield* Deferred.make<void>()
      const sentAfter = yield* Deferred.make<void>()
      const handler = Effect.gen(function* () {
        const first = text((yield* UDPConnection.datagram).payload)
        if (first === "leaving") {
          yield* Deferred.await(gone)
          // the peer's port is closed now: the kernel answers with ICMP port unreachable
          yield* Connection.send("are you there?")
          yield* Connection.send("still?")
          yield* Deferred.succeed(sentAfter, undefined)
          return
        }
        yield* Connection.send(first)
        return yield* echo
      })
      const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler })
      const steady = yield* testClient()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const leaving = yield* testClient()
          yield* leaving.send(server.localAddress, "leaving")
          yield* steady.send(server.localAddress, "before") // read after "leaving"
          assert.strictEqual(yield* steady.receiveText, "before")
        })
      )
      yield* Deferred.succeed(gone, undefined)
      yield* Deferred.await(sentAfter)
      yield* steady.send(server.localAddress, "after")
      assert.strictEqual(yield* steady.receiveText, "after")
      assert.strictEqual(server.stats.ended.failed, 0)
      assert.strictEqual(server.stats.ended.completed, 1)
    })
  )

  live("the socket service sends to any address and lists the table", () =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler: echo })
      const client = yield* testClient()
      yield* server.sendTo("unsolicited", client.address)
      const datagram = yield* client.receive
      assert.strictEqual(text(datagram.payload), "unsolicited")
      assert.strictEqual(NetAddress.formatInet(datagram.address), NetAddress.formatInet(server.localAddress))
      assert.strictEqual((yield* server.conversations).length, 0)
      yield* client.send(server.localAddress, bytes("x"))
      assert.strictEqual(yield* client.receiveText, "x")
      assert.strictEqual((yield* server.conversations).length, 1)
    })
  )
})
