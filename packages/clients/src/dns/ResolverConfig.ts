/**
 * What the resolver asks, and whom: name servers, search domains, timeouts, the hosts table, the cache. Read
 * from `/etc/resolv.conf` and `/etc/hosts` with `system`, or given explicitly with `make`.
 *
 * @example
 * ```ts
 * import { ResolverConfig } from "@diesel/clients/dns"
 *
 * const config = ResolverConfig.make({ nameservers: ["127.0.0.1:5353"], timeout: "500 millis", attempts: 3 })
 * ```
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Host from "effect/net/Host"
import * as NetAddress from "effect/net/NetAddress"
import * as Result from "effect/Result"
import { canonicalName } from "./Message.js"

/**
 * A name server: an IP address and a port.
 *
 * @since 0.1.0
 */
export interface NameServer {
  readonly host: string
  readonly port: number
  readonly family: "ipv4" | "ipv6"
}

/**
 * Cache settings. `maxEntries` bounds memory (least recently used entries go first); TTLs above `maxTtl` or
 * negative TTLs above `maxNegativeTtl` are shortened to them (seconds).
 *
 * @since 0.1.0
 */
export interface CacheOptions {
  readonly maxEntries: number
  readonly maxTtl: number
  readonly maxNegativeTtl: number
}

/**
 * A complete resolver configuration.
 *
 * @since 0.1.0
 */
export interface ResolverConfig {
  readonly nameservers: ReadonlyArray<NameServer>
  /** Domains appended to names with fewer than `ndots` dots (and then to the others, after the name itself). */
  readonly search: ReadonlyArray<string>
  readonly ndots: number
  /** How long to wait for each server on each attempt. */
  readonly timeout: Duration.Duration
  /** How many times to go through the list of servers. */
  readonly attempts: number
  /** Start each query at the next server instead of always the first (`options rotate`). */
  readonly rotate: boolean
  /** Addresses by canonical name, used by `lookup` before DNS. */
  readonly hosts: ReadonlyMap<string, ReadonlyArray<string>>
  /** The UDP payload size advertised with EDNS(0); `undefined` sends plain DNS (512-byte answers). */
  readonly ednsPayloadSize: number | undefined
  /** `false` turns off both the cache and the coalescing of concurrent identical queries. */
  readonly cache: CacheOptions | false
  /** UDP sockets in the pool, each bound to a random port. */
  readonly udpSockets: number
  /** After this many queries a socket is replaced by one on a fresh random port. */
  readonly queriesPerSocket: number
  /** Longest CNAME chain followed. */
  readonly maxCnameHops: number
  /**
   * Wrap each `resolve`, `lookup` and `reverse` in a span (`Resolver.resolve` with the name and type). Off by
   * default: a span costs about as much as the rest of a cached or local query.
   */
  readonly spans: boolean
}

/**
 * Input of `make`: every field optional; name servers as `"ip"`, `"ip:port"`, `"[ipv6]:port"` or objects.
 *
 * @since 0.1.0
 */
export interface Input {
  readonly nameservers?:
    | ReadonlyArray<string | { readonly host: string; readonly port?: number | undefined }>
    | undefined
  readonly search?: ReadonlyArray<string> | undefined
  readonly ndots?: number | undefined
  readonly timeout?: Duration.Input | undefined
  readonly attempts?: number | undefined
  readonly rotate?: boolean | undefined
  readonly hosts?: ReadonlyMap<string, ReadonlyArray<string>> | string | undefined
  readonly ednsPayloadSize?: number | undefined | null
  readonly cache?: Partial<CacheOptions> | boolean | undefined
  readonly udpSockets?: number | undefined
  readonly queriesPerSocket?: number | undefined
  readonly maxCnameHops?: number | undefined
  readonly spans?: boolean | undefined
}

/**
 * Default values (those of glibc where it has one).
 *
 * @since 0.1.0
 */
export const defaults = {
  ndots: 1,
  timeout: Duration.seconds(5),
  attempts: 2,
  ednsPayloadSize: 1232,
  cache: { maxEntries: 10_000, maxTtl: 86_400, maxNegativeTtl: 3_600 } satisfies CacheOptions,
  udpSockets: 1,
  queriesPerSocket: 4096,
  maxCnameHops: 16
} as const

/**
 * Parses a name server address (`"192.0.2.1"`, `"192.0.2.1:5353"`, `"2001:db8::1"`, `"[2001:db8::1]:53"`).
 *
 * @since 0.1.0
 */
export const nameServer = (
  input: string | { readonly host: string; readonly port?: number | undefined }
): Result.Result<NameServer, NetAddress.NetAddressError> => {
  const text =
    typeof input === "string"
      ? input
      : input.host.includes(":")
        ? `[${input.host}]:${input.port ?? 53}`
        : `${input.host}:${input.port ?? 53}`
  const withPort =
    text.startsWith("[") || /^[^:]*:\d+$/.test(text) ? text : text.includes(":") ? `[${text}]:53` : `${text}:53`
  return Result.map(NetAddress.inetAddressFromString(withPort), (inet) => ({
    host: NetAddress.formatIp(inet.address),
    port: inet.port,
    family: NetAddress.isIpv4Address(inet.address) ? ("ipv4" as const) : ("ipv6" as const)
  }))
}

/**
 * `host:port` of a name server, as errors report it.
 *
 * @since 0.1.0
 */
export const formatNameServer = (server: NameServer): string =>
  server.family === "ipv6" ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`

/**
 * Parses a hosts file (`/etc/hosts` format) into addresses by canonical name.
 *
 * @since 0.1.0
 */
export const parseHosts = (text: string): ReadonlyMap<string, ReadonlyArray<string>> => {
  const out = new Map<string, ReadonlyArray<string>>()
  for (const [name, addresses] of Host.parseHostsFile(text)) {
    out.set(canonicalName(name), addresses.map(NetAddress.formatIp))
  }
  return out
}

/**
 * Parses `resolv.conf`: `nameserver`, `search`, `domain`, and `options ndots:N timeout:N attempts:N rotate`.
 * Unknown lines and invalid values are ignored, as the C library does.
 *
 * @since 0.1.0
 */
export const parseResolvConf = (text: string): Input => {
  const nameservers: Array<string> = []
  let search: Array<string> | undefined
  let ndots: number | undefined
  let timeout: Duration.Input | undefined
  let attempts: number | undefined
  let rotate: boolean | undefined
  for (const line of text.split(/\r?\n/)) {
    const words = line
      .replace(/[#;].*$/, "")
      .trim()
      .split(/\s+/)
    const [keyword, ...args] = words
    switch (keyword) {
      case "nameserver":
        if (args[0] !== undefined && Result.isSuccess(nameServer(args[0]))) nameservers.push(args[0])
        break
      case "domain":
        if (args[0] !== undefined) search = [args[0]]
        break
      case "search":
        search = args.filter((domain) => domain !== "" && domain !== ".")
        break
      case "options":
        for (const option of args) {
          const [name, value] = option.split(":")
          const n = value === undefined ? Number.NaN : Number.parseInt(value, 10)
          if (name === "rotate") rotate = true
          else if (name === "ndots" && n >= 0) ndots = Math.min(n, 15)
          else if (name === "timeout" && n >= 1) timeout = Duration.seconds(Math.min(n, 30))
          else if (name === "attempts" && n >= 1) attempts = Math.min(n, 5)
        }
        break
    }
  }
  return { nameservers, search, ndots, timeout, attempts, rotate }
}

const positiveInt = (value: number | undefined, fallback: number): number =>
  value !== undefined && Number.isSafeInteger(value) && value > 0 ? value : fallback

/**
 * A configuration from explicit values and defaults. Invalid name servers are dropped; with none left the
 * resolver uses `127.0.0.1:53`, as the C library does.
 *
 * @since 0.1.0
 */
export const make = (input: Input = {}): ResolverConfig => {
  const nameservers: Array<NameServer> = []
  for (const entry of input.nameservers ?? []) {
    const parsed = nameServer(entry)
    if (Result.isSuccess(parsed)) nameservers.push(parsed.success)
  }
  if (nameservers.length === 0) nameservers.push({ host: "127.0.0.1", port: 53, family: "ipv4" })
  const cache = input.cache
  return {
    nameservers,
    search: (input.search ?? []).map(canonicalName).filter((domain) => domain !== ""),
    ndots:
      input.ndots !== undefined && Number.isSafeInteger(input.ndots) && input.ndots >= 0 ? input.ndots : defaults.ndots,
    timeout: input.timeout === undefined ? defaults.timeout : Duration.fromInputUnsafe(input.timeout),
    attempts: positiveInt(input.attempts, defaults.attempts),
    rotate: input.rotate ?? false,
    hosts: typeof input.hosts === "string" ? parseHosts(input.hosts) : (input.hosts ?? new Map()),
    ednsPayloadSize: input.ednsPayloadSize === null ? undefined : (input.ednsPayloadSize ?? defaults.ednsPayloadSize),
    cache:
      cache === false
        ? false
        : {
            maxEntries: positiveInt(cache === true ? undefined : cache?.maxEntries, defaults.cache.maxEntries),
            maxTtl: positiveInt(cache === true ? undefined : cache?.maxTtl, defaults.cache.maxTtl),
            maxNegativeTtl: positiveInt(
              cache === true ? undefined : cache?.maxNegativeTtl,
              defaults.cache.maxNegativeTtl
            )
          },
    udpSockets: positiveInt(input.udpSockets, defaults.udpSockets),
    queriesPerSocket: positiveInt(input.queriesPerSocket, defaults.queriesPerSocket),
    maxCnameHops: positiveInt(input.maxCnameHops, defaults.maxCnameHops),
    spans: input.spans ?? false
  }
}

const readText = (path: string) => Effect.tryPromise(() => readFile(path, "utf8")).pipe(Effect.orElseSucceed(() => ""))

/**
 * The system's configuration: `/etc/resolv.conf` and `/etc/hosts` (paths can be changed), overridden by
 * `overrides`. Missing files count as empty.
 *
 * @since 0.1.0
 */
export const system = (
  overrides: Input = {},
  paths: { readonly resolvConf?: string; readonly hosts?: string } = {}
): Effect.Effect<ResolverConfig> =>
  Effect.gen(function* () {
    const resolvConf = parseResolvConf(yield* readText(paths.resolvConf ?? "/etc/resolv.conf"))
    const hosts = parseHosts(yield* readText(paths.hosts ?? "/etc/hosts"))
    const defined = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined))
    return make({ ...resolvConf, hosts, ...defined })
  })
