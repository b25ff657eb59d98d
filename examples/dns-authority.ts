/**
 * A small authoritative DNS server: the framework from the server side. Over UDP, each client (peer) gets its
 * own conversation that answers its queries one after the other; over TCP, on the same port, each
 * connection is a conversation reading 2-byte length-prefixed queries (RFC 1035 §4.2.2). The answers come
 * from `Authority.respond`, a pure function over a zone held in memory, so `dig` (or `kdig`) can query it:
 *
 *   pnpm exec tsx --conditions=@diesel/source examples/dns-authority.ts
 *     (demo: a free port; stops a second after the first query, or after 10 s without one)
 *   pnpm exec tsx --conditions=@diesel/source examples/dns-authority.ts 5353 --forever
 *   kdig @127.0.0.1 -p PORT www.diesel.test      (or bind's dig; add +tcp for TCP)
 */
import { pathToFileURL } from "node:url"
import { Authority, Message } from "@diesel/clients/dns"
import { Connection, Receive } from "@diesel/core"
import { type TCPError, TCPService } from "@diesel/tcp"
import { UDPConnection, type UDPError } from "@diesel/udp"
import { NodeRuntime } from "@effect/platform-node"
import * as Console from "effect/Console"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"

const record = (name: string, ttl: number, data: Message.RData): Message.ResourceRecord => ({
  name,
  type: Message.typeOf(data),
  class: Message.ClassIN,
  ttl,
  data
})

/** More A records than fit in a 1232-byte UDP answer: a UDP query gets TC, and the client asks again over TCP. */
export const bigCount = 120

/** The example's zone, `diesel.test`. */
export const zone: Authority.Zone = Authority.zone("diesel.test", [
  record("diesel.test", 300, { _tag: "NS", host: "ns.diesel.test" }),
  record("diesel.test", 300, { _tag: "MX", priority: 10, exchange: "mail.diesel.test" }),
  record("diesel.test", 300, { _tag: "TXT", chunks: ["served by a diesel UDPConnection"] }),
  record("ns.diesel.test", 300, { _tag: "A", address: "127.0.0.1" }),
  record("www.diesel.test", 60, { _tag: "A", address: "192.0.2.10" }),
  record("www.diesel.test", 60, { _tag: "A", address: "192.0.2.11" }),
  record("www.diesel.test", 60, { _tag: "AAAA", address: "2001:db8::10" }),
  record("mail.diesel.test", 60, { _tag: "A", address: "192.0.2.25" }),
  record("docs.diesel.test", 60, { _tag: "CNAME", target: "www.diesel.test" }),
  record("*.users.diesel.test", 30, { _tag: "A", address: "192.0.2.99" }),
  ...Array.from({ length: bigCount }, (_, i) =>
    record("big.diesel.test", 60, { _tag: "A", address: `198.51.100.${i + 1}` })
  )
])

/** What the server has answered so far. */
export interface Counters {
  udpQueries: number
  tcpQueries: number
}

/** A UDP conversation with one client: answer each of its queries. */
const udpConversation = (onQuery: Effect.Effect<void>, counters: Counters) =>
  UDPConnection.eachDatagram((datagram) => {
    const response = Authority.respond(zone, datagram.payload, { transport: "udp" })
    if (response === undefined) return Effect.void
    counters.udpQueries++
    return Effect.andThen(Connection.send(response), onQuery)
  })

/** A TCP conversation: 2-byte length, query; reply the same way; until the client closes. */
const tcpConversation = (onQuery: Effect.Effect<void>, counters: Counters) =>
  Effect.gen(function* () {
    while (true) {
      const prefix = yield* Receive.receive(2)
      const query = yield* Receive.receive(((prefix[0] ?? 0) << 8) | (prefix[1] ?? 0))
      const response = Authority.respond(zone, query, { transport: "tcp" })
      if (response === undefined) return
      counters.tcpQueries++
      const framed = new Uint8Array(2 + response.length)
      framed[0] = response.length >> 8
      framed[1] = response.length & 0xff
      framed.set(response, 2)
      yield* Connection.send(framed)
      yield* onQuery
    }
  }).pipe(Effect.catchTag("ConnectionClosedError", () => Effect.void))

/**
 * Serves the zone on `host:port` over UDP and TCP until the scope closes. With port 0, a port free for both
 * is picked: UDP binds first and TCP listens on the same number (both again when TCP finds it taken).
 */
export const serve = (options: {
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** Runs after each answer is sent. */
  readonly onQuery?: Effect.Effect<void> | undefined
}): Effect.Effect<
  { readonly port: number; readonly counters: Counters },
  UDPError.BindError | TCPError.ListenError,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    const onQuery = options.onQuery ?? Effect.void
    const counters: Counters = { udpQueries: 0, tcpQueries: 0 }
    const outer = yield* Effect.scope
    const bindBoth = Effect.gen(function* () {
      const scope = yield* Scope.fork(outer)
      return yield* Effect.gen(function* () {
        const udp = yield* UDPConnection.make({
          host,
          port: options.port ?? 0,
          handler: udpConversation(onQuery, counters)
        })
        const port = udp.localAddress.port
        yield* TCPService.make({ host, port, name: "dns", handler: tcpConversation(onQuery, counters) })
        return port
      }).pipe(
        Scope.provide(scope),
        Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
      )
    })
    const port = yield* options.port === undefined || options.port === 0
      ? Effect.retry(bindBoth, { times: 5, while: (error) => error._tag === "ListenError" })
      : bindBoth
    return { port, counters }
  })

/**
 * The demo: serve on `port`, print how to query it, and stop after the first answer or after `seconds`.
 */
export const main = (options: {
  readonly port: number
  /** Stop after this long without a query; `undefined`: serve until interrupted. */
  readonly seconds: number | undefined
  readonly onListening?: ((port: number) => Effect.Effect<unknown>) | undefined
}): Effect.Effect<Counters, UDPError.BindError | TCPError.ListenError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const queried = yield* Deferred.make<void>()
      const server = yield* serve({
        port: options.port,
        onQuery: Deferred.succeed(queried, undefined).pipe(Effect.asVoid)
      })
      yield* Console.log(`authoritative for diesel.test on 127.0.0.1 port ${server.port} (UDP and TCP)`)
      yield* Console.log(`try: kdig @127.0.0.1 -p ${server.port} www.diesel.test   (or dig; +tcp for TCP)`)
      if (options.onListening !== undefined) yield* options.onListening(server.port)
      if (options.seconds === undefined) return yield* Effect.never
      // the first answer, plus a second for the client's follow-ups (a TCP retry after a truncated answer)
      yield* Effect.raceFirst(
        Effect.andThen(Deferred.await(queried), Effect.sleep("1 second")),
        Effect.sleep(`${options.seconds} seconds`)
      )
      yield* Console.log(
        `answered ${server.counters.udpQueries} UDP and ${server.counters.tcpQueries} TCP queries; stopping`
      )
      return server.counters
    })
  )

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2)
  const port = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 0)
  NodeRuntime.runMain(main({ port, seconds: args.includes("--forever") ? undefined : 10 }))
}
