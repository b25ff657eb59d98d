import type { Mailbox } from "@diesel/core"
import { Connection } from "@diesel/core"
import { UDPConnection } from "@diesel/udp"
import { assert } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as NetAddress from "effect/net/NetAddress"
import { TestClock } from "effect/testing"
import { onBothNetworks, testClient, text } from "./helpers.js"

const echo = Effect.forever(Effect.flatMap(UDPConnection.datagram, (datagram) => Connection.send(datagram.payload)))

/** Echo until the peer says "bye", then end the conversation. */
const echoUntilBye = Effect.gen(function* () {
  while (true) {
    const datagram = yield* UDPConnection.datagram
    yield* Connection.send(datagram.payload)
    if (text(datagram.payload) === "bye") return
  }
})

onBothNetworks("UDPConnection limits and policies", (live, effect) => {
  live("maxConversations with overflow refuse: new peers are dropped until a conversation ends", () =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        handler: echoUntilBye,
        maxConversations: 2
      })
      const [a, b, c] = [yield* testClient(), yield* testClient(), yield* testClient()]
      yield* a.send(server.localAddress, "a")
      assert.strictEqual(yield* a.receiveText, "a")
      yield* b.send(server.localAddress, "b")
      assert.strictEqual(yield* b.receiveText, "b")
      yield* c.send(server.localAddress, "refused")
      // a's next datagram is read after c's: when a gets its echo, c's datagram has been dropped
      yield* a.send(server.localAddress, "bye")
      assert.strictEqual(yield* a.receiveText, "bye")
      assert.strictEqual(server.stats.dropped.overflow, 1)
      assert.strictEqual(server.stats.started, 2)
      // a's conversation ended: there is room for c now
      yield* c.send(server.localAddress, "c")
      assert.strictEqual(yield* c.receiveText, "c")
      assert.strictEqual(server.stats.started, 3)
    })
  )

  live("maxConversations with evictOldestIdle: the least recently active conversation ends", () =>
    Effect.gen(function* () {
      const finalized: Array<string> = []
      const handler = Effect.gen(function* () {
        const peer = NetAddress.formatInet(yield* UDPConnection.peer)
        yield* Effect.addFinalizer(() => Effect.sync(() => finalized.push(peer)))
        return yield* echo
      }).pipe(Effect.scoped)
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        handler,
        maxConversations: 2,
        overflow: "evictOldestIdle"
      })
      const [a, b, c] = [yield* testClient(), yield* testClient(), yield* testClient()]
      yield* a.send(server.localAddress, "a1")
      assert.strictEqual(yield* a.receiveText, "a1")
      yield* b.send(server.localAddress, "b1")
      assert.strictEqual(yield* b.receiveText, "b1")
      yield* a.send(server.localAddress, "a2") // a is now the most recently active
      assert.strictEqual(yield* a.receiveText, "a2")
      yield* c.send(server.localAddress, "c1")
      assert.strictEqual(yield* c.receiveText, "c1")
      assert.deepStrictEqual(finalized, [NetAddress.formatInet(b.address)])
      assert.strictEqual(server.stats.ended.evicted, 1)
      const peers = (yield* server.conversations).map((info) => NetAddress.formatInet(info.peer)).sort()
      assert.deepStrictEqual(peers, [NetAddress.formatInet(a.address), NetAddress.formatInet(c.address)].sort())
    })
  )

  live("the accept hook can refuse a peer; its handler never runs", () =>
    Effect.gen(function* () {
      const refused = yield* testClient()
      const welcome = yield* testClient()
      const ran: Array<string> = []
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        accept: (peer) => Effect.succeed(peer.port !== refused.address.port),
        handler: Effect.andThen(
          Effect.flatMap(UDPConnection.peer, (peer) => Effect.sync(() => ran.push(NetAddress.formatInet(peer)))),
          echo
        )
      })
      yield* refused.send(server.localAddress, "let me in")
      yield* welcome.send(server.localAddress, "hello")
      assert.strictEqual(yield* welcome.receiveText, "hello")
      assert.deepStrictEqual(ran, [NetAddress.formatInet(welcome.address)])
      assert.strictEqual(server.stats.ended.refused, 1)
      assert.strictEqual(server.stats.dropped.refused, 1)
      assert.strictEqual(yield* server.size, 1)
    })
  )

  effect("idle timeout ends a quiet conversation and frees it (TestClock)", () =>
    Effect.gen(function* () {
      const ended = yield* Deferred.make<void>()
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        idleTimeout: "10 seconds",
        handler: Effect.ensuring(echo, Deferred.succeed(ended, undefined))
      })
      const client = yield* testClient()
      yield* client.send(server.localAddress, "x")
      assert.strictEqual(yield* client.receiveText, "x")
      yield* TestClock.adjust("9 seconds")
      yield* client.send(server.localAddress, "y") // activity at t=9s
      assert.strictEqual(yield* client.receiveText, "y")
      yield* TestClock.adjust("9 seconds") // t=18s: 9 s quiet
      assert.strictEqual(yield* server.size, 1)
      assert.isFalse(yield* Deferred.isDone(ended))
      yield* TestClock.adjust("1 second") // t=19s: 10 s quiet
      yield* Deferred.await(ended)
      assert.strictEqual(yield* server.size, 0)
      assert.strictEqual(server.stats.ended.idle, 1)
      // the peer can start over
      yield* client.send(server.localAddress, "z")
      assert.strictEqual(yield* client.receiveText, "z")
      assert.strictEqual(server.stats.started, 2)
    })
  )

  const mailboxCase = (policy: Mailbox.OverflowPolicy, expected: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const go = yield* Deferred.make<void>()
      const handler = Effect.gen(function* () {
        const first = yield* UDPConnection.datagram
        if (text(first.payload) === "ping") return yield* Connection.send("ping")
        yield* Deferred.await(go)
        const seen = [text(first.payload)]
        for (let i = 1; i < expected.length; i++) seen.push(text((yield* UDPConnection.datagram).payload))
        yield* Connection.send(seen.join(","))
      })
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        handler,
        mailbox: { capacity: 4, policy }
      })
      const slow = yield* testClient()
      const barrier = yield* testClient()
      for (let i = 1; i <= 10; i++) yield* slow.send(server.localAddress, String(i))
      // the barrier's echo proves the server has read the ten datagrams before it
      yield* barrier.send(server.localAddress, "ping")
      assert.strictEqual(yield* barrier.receiveText, "ping")
      const info = (yield* server.conversations).find((c) => c.peer.port === slow.address.port)
      assert.isDefined(info)
      if (info !== undefined) {
        assert.strictEqual(info.queued, 4)
        assert.strictEqual(info.dropped, 5)
      }
      assert.strictEqual(server.stats.dropped.mailboxFull, 5)
      yield* Deferred.succeed(go, undefined)
      assert.strictEqual(yield* slow.receiveText, expected.join(","))
    })

  // the handler takes "1" at once, then waits: its mailbox (capacity 4) sees the other nine
  live("mailbox dropNewest keeps the first datagrams and counts the drops", () =>
    mailboxCase("dropNewest", ["1", "2", "3", "4", "5"])
  )

  live("mailbox dropOldest keeps the latest datagrams and counts the drops", () =>
    mailboxCase("dropOldest", ["1", "7", "8", "9", "10"])
  )

  live("mailbox backpressure holds the socket back instead of dropping", () =>
    Effect.gen(function* () {
      const events: Array<string> = []
      const go = yield* Deferred.make<void>()
      const handler = Effect.gen(function* () {
        const first = yield* UDPConnection.datagram
        if (text(first.payload) === "ping") {
          events.push("barrier started")
          return yield* Connection.send("pong")
        }
        yield* Deferred.await(go)
        const seen = [text(first.payload)]
        for (let i = 2; i <= 10; i++) {
          seen.push(text((yield* UDPConnection.datagram).payload))
          events.push(`slow read ${i}`)
        }
        yield* Connection.send(seen.join(","))
      })
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        handler,
        mailbox: { capacity: 4, policy: "backpressure" }
      })
      const slow = yield* testClient()
      const barrier = yield* testClient()
      for (let i = 1; i <= 10; i++) yield* slow.send(server.localAddress, String(i))
      yield* barrier.send(server.localAddress, "ping")
      yield* Deferred.succeed(go, undefined)
      assert.strictEqual(yield* slow.receiveText, "1,2,3,4,5,6,7,8,9,10")
      assert.strictEqual(yield* barrier.receiveText, "pong")
      // the barrier's datagram waited behind the slow conversation's: the 10th could go in only once the
      // handler had taken the 6th, and the barrier's conversation started right after
      assert.isTrue(events.indexOf("barrier started") > events.indexOf("slow read 5"))
      assert.strictEqual(server.stats.dropped.mailboxFull, 0)
    })
  )
})
