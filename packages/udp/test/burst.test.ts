import * as Dgram from "node:dgram"
import { Connection } from "@diesel/core"
import { UDPConnection } from "@diesel/udp"
import { assert, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"

// The handler a newcomer writes: receive, then send, forever.
const echo = Effect.forever(Effect.flatMap(UDPConnection.datagram, (datagram) => Connection.send(datagram.payload)))

/**
 * Send `perPeer` datagrams from one node:dgram socket to `port`, all in one event-loop turn (libuv hands each to
 * the kernel at once), and resolve with the number of echoes once `expected` arrived.
 */
const burst = (port: number, perPeer: number, done: () => void) =>
  Effect.acquireRelease(
    Effect.callback<Dgram.Socket>((resume) => {
      const socket = Dgram.createSocket("udp4")
      socket.bind(0, "127.0.0.1", () => {
        socket.setRecvBufferSize(4 * 1024 * 1024)
        resume(Effect.succeed(socket))
      })
    }),
    (socket) => Effect.sync(() => socket.close())
  ).pipe(
    Effect.tap((socket) =>
      Effect.sync(() => {
        let echoes = 0
        socket.on("message", () => {
          if (++echoes === perPeer) done()
        })
        for (let i = 0; i < perPeer; i++) socket.send(`datagram ${i}`, port, "127.0.0.1")
      })
    )
  )

// Node only: a burst is about the kernel's and the mailbox's buffers, which the simulated network does not model.
it.describe("UDPConnection with default options under bursts (real loopback)", () => {
  it.live("a burst of 500 datagrams from one peer all reach the obvious receive-then-send loop", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler: echo })
        const all = yield* Deferred.make<void>()
        yield* burst(server.localAddress.port, 500, () => Deferred.doneUnsafe(all, Effect.void))
        yield* Deferred.await(all)
        assert.strictEqual(server.stats.datagramsIn, 500)
        assert.strictEqual(server.stats.dropped.mailboxFull, 0)
      })
    )
  )

  it.live("a few datagrams from each of 300 new peers at once all reach a cold server", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler: echo })
        const peers = 300
        const perPeer = 3
        const all = yield* Deferred.make<void>()
        let finished = 0
        const done = () => {
          if (++finished === peers) Deferred.doneUnsafe(all, Effect.void)
        }
        const sockets: Array<Effect.Effect<Dgram.Socket, never, import("effect/Scope").Scope>> = []
        for (let i = 0; i < peers; i++) sockets.push(burst(server.localAddress.port, perPeer, done))
        // open every socket first, then send from all of them in one turn
        yield* Effect.all(sockets, { concurrency: "unbounded" })
        yield* Deferred.await(all)
        assert.strictEqual(server.stats.started, peers)
        assert.strictEqual(server.stats.datagramsIn, peers * perPeer)
      })
    )
  )
})
