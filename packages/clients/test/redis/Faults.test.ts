import * as Net from "node:net"
import { RedisClient } from "@diesel/clients/redis"
import { Network } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

/** A loopback TCP server on port 0 that answers each connection's first bytes with `reply(n)`, then closes. */
const hostileServer = (reply: (connection: number) => Uint8Array, close = true) =>
  Effect.acquireRelease(
    Effect.callback<{ server: Net.Server; port: number; sockets: Set<Net.Socket> }>((resume) => {
      let connection = 0
      const sockets = new Set<Net.Socket>()
      const server = Net.createServer((socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        const n = connection++
        socket.on("error", () => {})
        socket.once("data", () => {
          if (close) socket.end(reply(n))
          else socket.write(reply(n))
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(
          Effect.succeed({ server, sockets, port: typeof address === "object" && address !== null ? address.port : 0 })
        )
      })
    }),
    ({ server, sockets }) =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        for (const socket of sockets) socket.destroy()
      })
  )

const prng = (seed: number) => {
  let x = seed | 0 || 0x2545f491
  return (n: number): number => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % n
  }
}

const errorTag = (exit: Exit.Exit<unknown, unknown>): string | undefined => {
  const error = Exit.findErrorOption(exit)
  return error._tag === "Some" && typeof error.value === "object" && error.value !== null && "_tag" in error.value
    ? String(error.value._tag)
    : undefined
}

describe("RedisClient against a hostile server", () => {
  it.live("bytes that are not RESP fail the command with RedisProtocolError", () =>
    Effect.gen(function* () {
      const { port } = yield* hostileServer(() => Buffer.from("?garbage\r\n"), false)
      const redis = yield* RedisClient.make({ port, protocol: 2 })
      const exit = yield* Effect.exit(redis.ping())
      assert.strictEqual(errorTag(exit), "RedisProtocolError")
    })
  )

  it.live("random bytes then a close: every command ends typed, none hangs", () =>
    Effect.gen(function* () {
      const rand = prng(Date.now())
      const { port } = yield* hostileServer(() => {
        const bytes = new Uint8Array(1 + rand(64))
        for (let i = 0; i < bytes.length; i++) bytes[i] = rand(256)
        // Sometimes start like a real reply so that the parser gets further.
        if (rand(2) === 0) bytes[0] = [43, 45, 58, 36, 42, 37, 62][rand(7)] ?? 43
        return bytes
      })
      const redis = yield* RedisClient.make({
        port,
        protocol: 2,
        reconnect: { baseDelay: "1 millis", maxDelay: "2 millis" }
      })
      const allowed = new Set([
        undefined,
        "RedisProtocolError",
        "RedisConnectionError",
        "RedisUnexpectedReply",
        "RedisReplyError"
      ])
      for (let i = 0; i < 50; i++) {
        const exit = yield* Effect.exit(redis.ping())
        assert.ok(allowed.has(errorTag(exit)), `unexpected ${String(errorTag(exit))}`)
        assert.ok(Exit.isSuccess(exit) || errorTag(exit) !== undefined, "a defect instead of a typed error")
      }
    })
  )

  it.live("a reply with no command in flight is a protocol error", () =>
    Effect.gen(function* () {
      const { port } = yield* hostileServer(() => Buffer.from("+PONG\r\n+EXTRA\r\n"), false)
      const redis = yield* RedisClient.make({ port, protocol: 2 })
      // The first PING gets its PONG; the extra reply breaks the connection for what follows.
      const first = yield* Effect.exit(redis.ping())
      assert.ok(Exit.isSuccess(first) || errorTag(first) === "RedisProtocolError")
    })
  )

  it.live("connections go through the Network seam", () =>
    Effect.gen(function* () {
      const { port } = yield* hostileServer(() => Buffer.from("+PONG\r\n"), false)
      const seen: Array<string> = []
      const counting: Network.NetworkService = {
        ...Network.node,
        connect: (options) => {
          seen.push(`${options.host}:${options.port}`)
          return Network.node.connect(options)
        }
      }
      const redis = yield* RedisClient.make({ port, protocol: 2 }).pipe(Network.provide(counting))
      assert.strictEqual(yield* redis.ping(), "PONG")
      assert.deepStrictEqual(seen, [`127.0.0.1:${port}`])
    })
  )
})
