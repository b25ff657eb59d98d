import * as Net from "node:net"
import { RedisClient } from "@diesel/clients/redis"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as RedisServer from "../harness/RedisServer.js"

/**
 * A loopback TCP proxy in front of a real redis-server: connection `n` is forwarded, unless `silent(n)`:
 * then it is accepted and never answered (a server stuck before its handshake reply). `drop` resets every
 * forwarded connection.
 */
const proxy = (target: number, silent: (connection: number) => boolean) =>
  Effect.acquireRelease(
    Effect.callback<{
      port: number
      drop: () => void
      accepted: () => number
      server: Net.Server
      sockets: Set<Net.Socket>
    }>((resume) => {
      let accepted = 0
      const sockets = new Set<Net.Socket>()
      const track = (socket: Net.Socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => {})
      }
      const server = Net.createServer((socket) => {
        track(socket)
        if (silent(accepted++)) return
        const upstream = Net.connect({ host: "127.0.0.1", port: target })
        track(upstream)
        socket.pipe(upstream)
        upstream.pipe(socket)
        socket.on("close", () => upstream.destroy())
        upstream.on("close", () => socket.destroy())
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(
          Effect.succeed({
            port: typeof address === "object" && address !== null ? address.port : 0,
            drop: () => {
              for (const socket of sockets) socket.resetAndDestroy()
            },
            accepted: () => accepted,
            server,
            sockets
          })
        )
      })
    }),
    ({ server, sockets }) =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        for (const socket of sockets) socket.destroy()
      })
  )

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined => {
  const error = Exit.findErrorOption(exit)
  return error._tag === "Some" ? error.value : undefined
}

layer(RedisServer.layer(), { timeout: 30_000, excludeTestServices: true })("RedisClient handshake", (it) => {
  it.effect("a server that accepts and never answers HELLO fails make() within connectTimeout", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.RedisServer
      const { port } = yield* proxy(server.port, () => true)
      const error = failureOf(
        yield* Effect.exit(Effect.scoped(RedisClient.make({ port, connectTimeout: "200 millis" })))
      )
      assert.strictEqual(error?._tag, "RedisConnectionError")
      if (error?._tag === "RedisConnectionError") {
        assert.strictEqual(error.reason, "ConnectFailed")
        assert.match(error.message, /HELLO: no reply within/)
      }
    })
  )

  it.effect("the SELECT of a RESP2 handshake is under the same deadline", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.RedisServer
      const { port } = yield* proxy(server.port, () => true)
      const error = failureOf(
        yield* Effect.exit(
          Effect.scoped(RedisClient.make({ port, protocol: 2, database: 1, connectTimeout: "200 millis" }))
        )
      )
      assert.strictEqual(error?._tag, "RedisConnectionError")
      if (error?._tag === "RedisConnectionError") assert.match(error.message, /SELECT: no reply within/)
    })
  )

  it.effect("a reconnection into a silent server times out and tries again", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.RedisServer
      // the first connection is forwarded, the next two are silent, then forwarded again
      const p = yield* proxy(server.port, (n) => n === 1 || n === 2)
      const redis = yield* RedisClient.make({
        port: p.port,
        connectTimeout: "200 millis",
        reconnect: { baseDelay: "10 millis", maxDelay: "20 millis" }
      })
      assert.strictEqual(yield* redis.ping(), "PONG")
      p.drop()
      // queued (or lost in flight, then queued) until a connection past the silent ones answers
      const reply = yield* redis
        .ping()
        .pipe(
          Effect.retry({ while: (e) => e._tag === "RedisConnectionError" && e.reason === "ConnectionLost", times: 3 })
        )
      assert.strictEqual(reply, "PONG")
      assert.isAtLeast(p.accepted(), 4)
    })
  )
})
