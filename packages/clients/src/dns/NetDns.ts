/**
 * The resolver behind Effect's standard interfaces: `effect/net`'s `Dns` service, and `@diesel/core`'s
 * `Network` seam, whose `lookup` the framework's TCP and UDP clients use. With these layers, any Effect
 * program and diesel's own clients resolve names over DNS directly, never through `getaddrinfo` and the
 * libuv thread pool.
 *
 * @example
 * ```ts
 * import { NetDns, Resolver } from "@diesel/clients/dns"
 * import { Effect, Layer } from "effect"
 * import { Dns } from "effect/net"
 *
 * const DnsLive = NetDns.layer.pipe(Layer.provide(Resolver.layerSystem()))
 * const program = Effect.gen(function* () {
 *   const dns = yield* Dns.Dns
 *   return yield* dns.lookup("example.com")
 * }).pipe(Effect.provide(DnsLive))
 * ```
 *
 * @since 0.1.0
 */
import { Network } from "@diesel/core"
import * as Arr from "effect/Array"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Dns from "effect/net/Dns"
import * as Host from "effect/net/Host"
import * as NetAddress from "effect/net/NetAddress"
import * as Result from "effect/Result"
import type * as Message from "./Message.js"
import type { ResolveError } from "./ResolveError.js"
import { Resolver, type ResolverService } from "./Resolver.js"

/**
 * The `Dns.DnsError` reason of a resolver error.
 *
 * @since 0.1.0
 */
export const reasonOf = (error: ResolveError): Dns.DnsErrorReason => {
  switch (error._tag) {
    case "NxDomain":
    case "NoData":
      return "NotFound"
    case "ServerFailure":
    case "CnameLoop":
      return "ServerFailure"
    case "Refused":
    case "DnsTransportError":
      return "Refused"
    case "ResolveTimeout":
      return "Timeout"
    case "MalformedAnswer":
      return "InvalidResponse"
    case "BadName":
      return "BadName"
  }
}

const toDnsError =
  (method: Dns.DnsError["method"], hostname: string, recordType?: Dns.RecordType) =>
  (error: ResolveError): Dns.DnsError =>
    new Dns.DnsError({ reason: reasonOf(error), method, hostname, recordType, cause: error })

const textDecoder = new TextDecoder()

/**
 * A name from the codec (presentation format, `\DDD` escapes) as fully qualified text keeping only the `\.`
 * and `\\` escapes, bytes decoded as UTF-8: what `Dns.Ptr.host` and `Dns.Soa.admin` hold.
 */
const nameText = (name: string): string => {
  if (!name.includes("\\")) return `${name}.`
  const bytes: Array<number> = []
  const push = (text: string) => {
    for (const byte of new TextEncoder().encode(text)) bytes.push(byte)
  }
  for (let i = 0; i < name.length; i++) {
    const char = name[i] ?? ""
    if (char !== "\\") {
      push(char)
      continue
    }
    const digits = name.slice(i + 1, i + 4)
    if (/^\d{3}$/.test(digits)) {
      const value = Number(digits)
      if (value === 0x2e || value === 0x5c) push(`\\${String.fromCharCode(value)}`)
      else bytes.push(value)
      i += 3
    } else {
      const next = name[i + 1] ?? ""
      push(next === "." || next === "\\" ? `\\${next}` : next)
      i += 1
    }
  }
  return `${textDecoder.decode(Uint8Array.from(bytes))}.`
}

const domainName = (name: string): Host.DomainName => Host.domainNameFromStringUnsafe(`${name}.`)

/** The `Dns` record for record data of the codec (throws on values `Dns.makeRecord` rejects). */
const toRecord = (data: Message.RData): Dns.DnsRecord | undefined => {
  switch (data._tag) {
    case "A":
      return Dns.makeRecordUnsafe("A", { address: NetAddress.ipv4FromString(data.address).pipe(Result.getOrThrow) })
    case "AAAA":
      return Dns.makeRecordUnsafe("AAAA", { address: NetAddress.ipv6FromString(data.address).pipe(Result.getOrThrow) })
    case "CNAME":
      return Dns.makeRecordUnsafe("CNAME", { target: domainName(data.target) })
    case "NS":
      return Dns.makeRecordUnsafe("NS", { host: domainName(data.host) })
    case "PTR":
      return Dns.makeRecordUnsafe("PTR", { host: nameText(data.host) })
    case "MX":
      return Dns.makeRecordUnsafe("MX", { exchange: domainName(data.exchange), priority: data.priority })
    case "TXT": {
      const [first, ...rest] = data.chunks
      return Dns.makeRecordUnsafe("TXT", { chunks: [first ?? "", ...rest] })
    }
    case "SRV":
      return Dns.makeRecordUnsafe("SRV", {
        target: domainName(data.target),
        port: data.port,
        priority: data.priority,
        weight: data.weight
      })
    case "SOA":
      return Dns.makeRecordUnsafe("SOA", {
        primary: domainName(data.primary),
        admin: nameText(data.admin),
        serial: data.serial,
        refresh: Duration.seconds(data.refresh),
        retry: Duration.seconds(data.retry),
        expire: Duration.seconds(data.expire),
        minimum: Duration.seconds(data.minimum)
      })
    case "CAA":
      return Dns.makeRecordUnsafe("CAA", { critical: (data.flags & 0x80) !== 0, tag: data.tag, value: data.value })
    case "Unknown":
      return undefined
  }
}

/**
 * A `Dns` service answering through `resolver`. NAPTR and TLSA queries fail with `Unsupported`.
 *
 * @since 0.1.0
 */
export const make = (resolver: ResolverService): Dns.Dns["Service"] =>
  Dns.make({
    lookup: (host, family) =>
      resolver.lookup(host, { family }).pipe(
        Effect.map((addresses) => Arr.filterMap(addresses, (address) => NetAddress.ipFromString(address))),
        Effect.mapError(toDnsError("lookup", host))
      ),
    resolve: (name, type) => {
      if (type === "NAPTR" || type === "TLSA") {
        return Effect.fail(
          new Dns.DnsError({ reason: "Unsupported", method: "resolve", hostname: name, recordType: type })
        )
      }
      return resolver.resolve(name, type).pipe(
        Effect.mapError(toDnsError("resolve", name, type)),
        Effect.flatMap((answer) => {
          const records: Array<Dns.DnsRecord> = []
          let skipped: unknown
          for (const record of answer.records) {
            const converted = Result.try(() => toRecord(record.data))
            if (Result.isSuccess(converted) && converted.success !== undefined) records.push(converted.success)
            else skipped ??= Result.isFailure(converted) ? converted.failure : "unknown record type"
          }
          return records.length === 0
            ? Effect.fail(
                new Dns.DnsError({
                  reason: "InvalidResponse",
                  method: "resolve",
                  hostname: name,
                  recordType: type,
                  cause: skipped
                })
              )
            : Effect.succeed(records)
        })
      )
    }
  })

/**
 * Provides `effect/net`'s `Dns` service from the `Resolver` in context.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Dns.Dns, never, Resolver> = Layer.effect(Dns.Dns, Resolver.useSync(make))

/**
 * Replaces the `lookup` of `@diesel/core`'s `Network` seam (the rest of the current network is kept), so that
 * diesel's transports resolve host names with the `Resolver` in context.
 *
 * @since 0.1.0
 */
export const layerNetwork: Layer.Layer<never, never, Resolver> = Layer.effect(
  Network.Network,
  Effect.gen(function* () {
    const base = yield* Network.Network
    const resolver = yield* Resolver
    const lookup: Network.NetworkService["lookup"] = (host, options) =>
      resolver.lookup(host, { family: options?.family }).pipe(
        Effect.map((addresses) => Arr.filterMap(addresses, (address) => NetAddress.ipFromString(address))),
        Effect.mapError(toDnsError("lookup", host))
      )
    return { ...base, lookup }
  })
)
