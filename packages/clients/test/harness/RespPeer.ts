/**
 * A small Redis peer written with diesel itself (a `TCPService` through the `Network` seam), so that the
 * client's tests can run on the simulated network as well as on real sockets. It speaks RESP2 (HELLO is
 * answered with NOPROTO, as a Redis 5 would), keeps string keys in memory, records every command it
 * receives, and can turn silent (accept, read, never answer) or drop its connections.
 *
 * Real redis-server stays the peer for everything else; this one exists for what the simulation adds.
 */
import { Connection, Receive } from "@diesel/core"
import { type TCPConnection, TCPService } from "@diesel/tcp"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Resp } from "../../src/redis/index.js"

export interface RespPeer {
  readonly port: number
  /** Every command received, upper-cased name first. */
  readonly received: Array<ReadonlyArray<string>>
  /** New commands are read and recorded, never answered. */
  silent: boolean
  /** Reset every open connection. */
  readonly drop: Effect.Effect<void>
}

const bulk = (value: string | null): string =>
  value === null ? "$-1\r\n" : `$${Buffer.byteLength(value)}\r\n${value}\r\n`

const text = (value: Resp.RespValue): string =>
  typeof value === "string" ? value : value instanceof Uint8Array ? Buffer.from(value).toString() : String(value)

export const make = (
  options: { readonly host?: string | undefined } = {}
): Effect.Effect<RespPeer, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const data = new Map<string, string>()
    const open = new Set<TCPConnection.TCPConnection>()
    const answer = (args: ReadonlyArray<string>): string => {
      const [name = "", a = "", b = ""] = args
      switch (name) {
        case "HELLO":
          return "-NOPROTO unsupported protocol version\r\n"
        case "PING":
          return args.length > 1 ? bulk(a) : "+PONG\r\n"
        case "SELECT":
        case "AUTH":
          return "+OK\r\n"
        case "SET":
          data.set(a, b)
          return "+OK\r\n"
        case "GET":
          return bulk(data.get(a) ?? null)
        case "INCR": {
          const n = Number(data.get(a) ?? "0") + 1
          data.set(a, String(n))
          return `:${n}\r\n`
        }
        case "DEL": {
          let n = 0
          for (const key of args.slice(1)) if (data.delete(key)) n++
          return `:${n}\r\n`
        }
        default:
          return `-ERR unknown command '${name}'\r\n`
      }
    }
    const peer: { -readonly [K in keyof RespPeer]: RespPeer[K] } = {
      port: 0,
      received: [],
      silent: false,
      drop: Effect.suspend(() => Effect.forEach([...open], (connection) => connection.abort, { discard: true }))
    }
    const service = yield* TCPService.make({
      host: options.host ?? "127.0.0.1",
      handler: (connection) =>
        Effect.gen(function* () {
          open.add(connection)
          yield* Effect.addFinalizer(() => Effect.sync(() => open.delete(connection)))
          // commands are RESP arrays of bulk strings: the reply parser reads them too
          const parser = new Resp.Parser()
          while (true) {
            parser.feed(yield* Receive.receiveAny())
            let out = ""
            for (let command = parser.next(); command !== undefined; command = parser.next()) {
              const args = Array.isArray(command) ? command.map(text) : [text(command)]
              args[0] = (args[0] ?? "").toUpperCase()
              peer.received.push(args)
              if (!peer.silent) out += answer(args)
            }
            if (out.length > 0) yield* Connection.send(out)
          }
        }).pipe(Effect.scoped, Effect.ignore)
    })
    peer.port = service.port
    return peer
  })
