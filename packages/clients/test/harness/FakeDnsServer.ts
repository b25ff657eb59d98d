/**
 * A scriptable DNS server on 127.0.0.1 for the cases knot cannot play: silence, SERVFAIL, garbage, forged
 * answers. It records every query it receives, with the source port.
 */
import * as Dgram from "node:dgram"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import { Authority, Message } from "../../src/dns/index.js"

export interface ReceivedQuery {
  readonly message: Message.Message
  readonly sourcePort: number
}

export interface Reply {
  /** Send from the server's address (the one the resolver asked). */
  readonly send: (bytes: Uint8Array) => void
  /** Send from another port of the same host: a forged source. */
  readonly sendFromElsewhere: (bytes: Uint8Array) => void
}

export type Handler = (query: Message.Message, raw: Uint8Array, reply: Reply) => void

export interface FakeDnsServer {
  readonly port: number
  readonly address: string
  readonly queries: Array<ReceivedQuery>
}

const bind = (socket: Dgram.Socket) =>
  Effect.callback<number>((resume) => {
    socket.bind(0, "127.0.0.1", () => resume(Effect.succeed(socket.address().port)))
  })

const close = (socket: Dgram.Socket) =>
  Effect.callback<void>((resume) => {
    socket.close(() => resume(Effect.void))
  })

/** Starts a fake server running `handler` for each query; closed with the scope. */
export const make = (handler: Handler): Effect.Effect<FakeDnsServer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const main = yield* Effect.acquireRelease(
      Effect.sync(() => Dgram.createSocket("udp4")),
      close
    )
    const other = yield* Effect.acquireRelease(
      Effect.sync(() => Dgram.createSocket("udp4")),
      close
    )
    const port = yield* bind(main)
    yield* bind(other)
    const queries: Array<ReceivedQuery> = []
    main.on("message", (raw, rinfo) => {
      const decoded = Message.decode(raw)
      if (Result.isFailure(decoded)) return
      queries.push({ message: decoded.success, sourcePort: rinfo.port })
      handler(decoded.success, raw, {
        send: (bytes) => main.send(bytes, rinfo.port, rinfo.address),
        sendFromElsewhere: (bytes) => other.send(bytes, rinfo.port, rinfo.address)
      })
    })
    return { port, address: `127.0.0.1:${port}`, queries }
  })

const a = (name: string, address: string, ttl = 120): Message.ResourceRecord => ({
  name,
  type: Message.TypeCode.A,
  class: Message.ClassIN,
  ttl,
  data: { _tag: "A", address }
})

/** The zone the fake authority serves: `fake.test` with a few names. */
export const fakeZone = Authority.zone("fake.test", [
  a("www.fake.test", "10.9.0.1"),
  a("short.fake.test", "10.9.0.2", 5),
  a("ttl0.fake.test", "10.9.0.3", 0),
  a("*.wild.fake.test", "10.9.1.1", 300),
  {
    name: "fake.test",
    type: Message.TypeCode.SOA,
    class: Message.ClassIN,
    ttl: 600,
    data: {
      _tag: "SOA",
      primary: "ns.fake.test",
      admin: "hostmaster.fake.test",
      serial: 1,
      refresh: 7200,
      retry: 3600,
      expire: 1209600,
      minimum: 60
    }
  }
])

/** Answers from a zone (default `fakeZone`). */
export const authority =
  (zone: Authority.Zone = fakeZone): Handler =>
  (_query, raw, reply) => {
    const response = Authority.respond(zone, raw, { transport: "udp" })
    if (response !== undefined) reply.send(response)
  }

/** Never answers. */
export const blackhole: Handler = () => undefined

/** Answers every query with an empty response carrying `rcode`. */
export const rcode =
  (code: number): Handler =>
  (query, _raw, reply) => {
    const bytes = Message.encode({ ...query, qr: true, rcode: code, edns: undefined })
    if (Result.isSuccess(bytes)) reply.send(bytes.success)
  }

/** Answers with the right ID and then garbage. */
export const garbage: Handler = (query, _raw, reply) => {
  reply.send(Uint8Array.from([query.id >> 8, query.id & 0xff, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 12]))
}
