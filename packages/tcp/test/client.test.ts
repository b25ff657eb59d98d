import * as Net from "node:net"
import { Connection, Network, Receive } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as NetAddress from "effect/net/NetAddress"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import { TCPClient, TCPService } from "../src/index.js"
import { onBothNetworks, text } from "./helpers.js"

const echoLines = Effect.forever(Effect.flatMap(Receive.untilEol(), Connection.send))
const upper = Effect.forever(Effect.flatMap(Receive.untilEol(), (line) => Connection.send(text(line).toUpperCase())))

/** A port with nothing listening on it (bound, then closed). */
const freePort = Effect.gen(function* () {
  const network = yield* Network.Network
  const server = yield* network.listen({ host: "127.0.0.1", port: 0 })
  return NetAddress.isInetAddress(server.address) ? server.address.port : 0
}).pipe(Effect.scoped)

onBothNetworks("TCPClient", (live) => {
  live("connect and call: a round trip through the call scope", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({ host: "127.0.0.1", handler: echoLines })
      const client = yield* TCPClient.connect({ host: "127.0.0.1", port: service.port })
      const reply = yield* TCPClient.call(client, Effect.andThen(Connection.send("ping\r\n"), Receive.untilEol()))
      assert.strictEqual(text(reply), "ping\r\n")
    })
  )

  live("an accepted conversation knows both ends of its connection", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        handler: (connection) =>
          Connection.send(
            `${Connection.formatAddress(connection.localAddress)} ${Connection.formatAddress(connection.remoteAddress)}\r\n`
          )
      })
      const client = yield* TCPClient.connect({ host: "127.0.0.1", port: service.port })
      const [local = "", remote = ""] = text(yield* TCPClient.call(client, Receive.untilEol()))
        .trim()
        .split(" ")
      assert.strictEqual(local, `127.0.0.1:${service.port}`)
      assert.match(remote, /^127\.0\.0\.1:\d+$/)
    })
  )

  live("over IPv6", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({ host: "::1", handler: echoLines })
      const client = yield* TCPClient.connect({ host: "::1", port: service.port })
      const reply = yield* TCPClient.call(client, Effect.andThen(Connection.send("six\r\n"), Receive.untilEol()))
      assert.strictEqual(text(reply), "six\r\n")
    })
  )

  live("a call inside a TCP conversation uses the client's connection, then the conversation's again", () =>
    Effect.gen(function* () {
      const backend = yield* TCPService.make({ host: "127.0.0.1", handler: upper })
      // the front service asks the backend for every line, then answers on its own connection
      const front = yield* TCPService.make({
        host: "127.0.0.1",
        handler: Effect.gen(function* () {
          const client = yield* TCPClient.connect({ host: "127.0.0.1", port: backend.port })
          while (true) {
            const line = yield* Receive.untilEol()
            const answer = yield* TCPClient.call(client, Effect.andThen(Connection.send(line), Receive.untilEol()))
            yield* Connection.send(`front got ${text(answer)}`)
          }
        }).pipe(Effect.scoped)
      })
      const user = yield* TCPClient.connect({ host: "127.0.0.1", port: front.port })
      const reply = yield* TCPClient.call(user, Effect.andThen(Connection.send("hi\r\n"), Receive.untilEol()))
      assert.strictEqual(text(reply), "front got HI\r\n")
    })
  )

  live("nested calls to two clients restore the outer one", () =>
    Effect.gen(function* () {
      const a = yield* TCPService.make({ host: "127.0.0.1", handler: echoLines })
      const b = yield* TCPService.make({ host: "127.0.0.1", handler: upper })
      const ca = yield* TCPClient.connect({ host: "127.0.0.1", port: a.port })
      const cb = yield* TCPClient.connect({ host: "127.0.0.1", port: b.port })
      const result = yield* TCPClient.call(
        ca,
        Effect.gen(function* () {
          const inner = yield* TCPClient.call(cb, Effect.andThen(Connection.send("b\r\n"), Receive.untilEol()))
          yield* Connection.send("a\r\n")
          const outer = yield* Receive.untilEol()
          return [text(inner), text(outer)]
        })
      )
      assert.deepStrictEqual(result, ["B\r\n", "a\r\n"])
      // and outside any call there is no current connection
      const none = yield* Effect.exit(Connection.send("x"))
      assert.isTrue(Exit.isFailure(none))
    })
  )

  live("connection refused is a ConnectError", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const error = yield* Effect.flip(TCPClient.connect({ host: "127.0.0.1", port }))
      assert.strictEqual(error._tag, "ConnectError")
      assert.isFalse(error.timedOut)
    })
  )

  live("reconnection with Effect.retry dials again", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        handler: Effect.gen(function* () {
          const line = text(yield* Receive.untilEol())
          // the first two conversations hang up without answering
          if (line === "try\r\n") yield* Connection.close
        })
      })
      let attempts = 0
      const result = yield* Effect.gen(function* () {
        attempts++
        const client = yield* TCPClient.connect({ host: "127.0.0.1", port: service.port })
        return yield* TCPClient.call(
          client,
          Effect.andThen(Connection.send(attempts < 3 ? "try\r\n" : "last\r\n"), Receive.untilEol())
        )
      }).pipe(Effect.scoped, Effect.retry(Schedule.recurs(5)), Effect.exit)
      // the third conversation returns without answering too, so every attempt fails: 6 dials in all
      assert.isTrue(Exit.isFailure(result))
      assert.strictEqual(attempts, 6)
    })
  )
})

// node only: the simulation's TLS is transparent (no handshake to stall, no certificate to refuse)
describe("TCPClient TLS (node)", () => {
  it.live("connect timeout (a TLS handshake that never completes)", () =>
    Effect.gen(function* () {
      // a plain TCP listener that accepts and never answers: the TLS handshake cannot complete
      const sockets: Array<Net.Socket> = []
      const server = Net.createServer((socket) => {
        sockets.push(socket)
      })
      yield* Effect.acquireRelease(
        Effect.callback<void>((resume) => {
          server.listen({ host: "127.0.0.1", port: 0 }, () => resume(Effect.void))
        }),
        () =>
          Effect.sync(() => {
            for (const socket of sockets) socket.destroy()
            server.close()
          })
      )
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const error = yield* Effect.flip(TCPClient.connect({ host: "127.0.0.1", port, tls: true, timeout: "100 millis" }))
      assert.strictEqual(error._tag, "ConnectError")
      assert.isTrue(error.timedOut)
      assert.isTrue(error.tls)
    })
  )

  it.live("STARTTLS-less upgrade on a plain peer fails with UpgradeError, not a hang", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        handler: Effect.andThen(Deferred.succeed(started, undefined), Effect.andThen(Connection.close, Effect.void))
      })
      const client = yield* TCPClient.connect({ host: "127.0.0.1", port: service.port })
      yield* Deferred.await(started)
      const exit = yield* Effect.exit(TCPClient.startTls(client, { rejectUnauthorized: true }))
      assert.isTrue(Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail")
    })
  )

  it.live("a host name is resolved through Network.lookup; each address is tried in order", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({ host: "127.0.0.1", handler: echoLines })
      const node = yield* Network.Network
      const asked: Array<string> = []
      // 127.0.0.2 refuses (nothing listens there), 127.0.0.1 answers
      const network: Network.NetworkService = {
        ...node,
        lookup: (host) => {
          asked.push(host)
          return Effect.succeed([Result.getOrThrow(NetAddress.ipFromString("127.0.0.2")), NetAddress.ipv4Loopback])
        }
      }
      const client = yield* TCPClient.connect({ host: "service.invalid", port: service.port }).pipe(
        Effect.provideService(Network.Network, network)
      )
      const reply = yield* TCPClient.call(client, Effect.andThen(Connection.send("name\r\n"), Receive.untilEol()))
      assert.strictEqual(text(reply), "name\r\n")
      assert.deepStrictEqual(asked, ["service.invalid"])
      const refused = yield* TCPClient.connect({ host: "service.invalid", port: yield* freePort }).pipe(
        Effect.provideService(Network.Network, network),
        Effect.flip
      )
      assert.strictEqual(refused._tag, "ConnectError")
      assert.strictEqual(refused.host, "service.invalid")
    })
  )
})
