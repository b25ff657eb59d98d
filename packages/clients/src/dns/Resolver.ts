/**
 * A stub resolver: asks the configured name servers over UDP (falling back to TCP when an answer is
 * truncated), follows CNAME chains, applies the search list, and caches answers (positive and negative)
 * for their TTL. It never touches the libuv thread pool: every query is a datagram or a TCP connection
 * through `@diesel/core`'s `Network` seam.
 *
 * @example
 * ```ts
 * import { Resolver } from "@diesel/clients/dns"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const answer = yield* Resolver.resolve("www.example.test", "A")
 *   return answer.records.map((record) => `${record.data.address} (ttl ${record.ttl})`)
 * }).pipe(Effect.provide(Resolver.layer({ nameservers: ["127.0.0.1:5353"] })))
 * ```
 *
 * @since 0.1.0
 */
import * as Arr from "effect/Array"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Dns from "effect/net/Dns"
import * as NetAddress from "effect/net/NetAddress"
import * as Result from "effect/Result"
import * as Transport from "./internal/transport.js"
import * as Message from "./Message.js"
import {
  BadName,
  CnameLoop,
  MalformedAnswer,
  NoData,
  NxDomain,
  Refused,
  type ResolveError,
  ResolveTimeout,
  ServerFailure,
  TransportError
} from "./ResolveError.js"
import * as ResolverCache from "./ResolverCache.js"
import * as ResolverConfig from "./ResolverConfig.js"

/**
 * A successful resolution: the records of the type asked for at the end of the CNAME chain, with their
 * remaining TTLs.
 *
 * @since 0.1.0
 */
export interface Answer<T extends Message.RecordType = Message.RecordType> {
  /** The name asked for, after the search list (canonical, no trailing dot). */
  readonly name: string
  /** The name the records belong to, after CNAMEs (equal to `name` without them). */
  readonly canonicalName: string
  /** The CNAME chain from `name` to `canonicalName` (empty without CNAMEs). */
  readonly cnames: ReadonlyArray<string>
  readonly records: Arr.NonEmptyReadonlyArray<Message.ResourceRecord<Message.RDataFor<T>>>
  /** The smallest TTL of the records and CNAMEs, in seconds. */
  readonly ttl: number
  /** `host:port` of the server that answered, or `"cache"`. */
  readonly source: string
}

/**
 * A raw exchange: the response message and the server that sent it.
 *
 * @since 0.1.0
 */
export interface Exchanged {
  readonly message: Message.Message
  readonly server: string
  /** Whether the answer came over TCP after a truncated UDP answer. */
  readonly tcp: boolean
}

/**
 * Counters, for tests and metrics.
 *
 * @since 0.1.0
 */
export interface Stats extends Transport.Stats {
  cacheHits: number
  cacheMisses: number
  /** Queries that joined an identical query already in flight. */
  coalesced: number
  /** Entries in the cache now. */
  cacheSize: number
}

/**
 * The resolver's operations.
 *
 * @since 0.1.0
 */
export interface ResolverService {
  readonly config: ResolverConfig.ResolverConfig
  /** The records of one type for a name, following CNAMEs, through the cache and the search list. */
  readonly resolve: <T extends Message.RecordType>(name: string, type: T) => Effect.Effect<Answer<T>, ResolveError>
  /**
   * Addresses to connect to: an IP literal as is, else the hosts table, else A and/or AAAA from DNS (IPv4
   * first). Without a family, it fails only when both queries fail.
   */
  readonly lookup: (
    host: string,
    options?: { readonly family?: "IPv4" | "IPv6" | undefined }
  ) => Effect.Effect<Arr.NonEmptyReadonlyArray<string>, ResolveError>
  /** The names of an address (PTR records in in-addr.arpa / ip6.arpa). */
  readonly reverse: (address: string) => Effect.Effect<Arr.NonEmptyReadonlyArray<string>, ResolveError>
  /** One query as is (no cache, search list or CNAME following): the first usable response from a server. */
  readonly query: (name: string, type: Message.RecordType | number) => Effect.Effect<Exchanged, ResolveError>
  readonly stats: () => Stats
  /** The local UDP ports the resolver sends from now. */
  readonly ports: () => ReadonlyArray<number>
  readonly clearCache: Effect.Effect<void>
}

/**
 * The resolver service.
 *
 * @since 0.1.0
 */
export class Resolver extends Context.Service<Resolver, ResolverService>()("@diesel/clients/dns/Resolver") {}

type Negative = NxDomain | NoData

/** Cache entries and queries in flight are keyed by `name|type`, so an answer found there is of that type. */
const ofType = <T extends Message.RecordType>(answer: Answer): Answer<T> => answer as unknown as Answer<T>
const erase = <T extends Message.RecordType>(answer: Answer<T>): Answer => answer as unknown as Answer

type CacheValue =
  | { readonly _tag: "Positive"; readonly answer: Answer }
  | { readonly _tag: "Negative"; readonly error: Negative }

/** RFC 2308 §5: the negative TTL is the smaller of the SOA record's TTL and its MINIMUM field. */
const negativeTtl = (message: Message.Message): number => {
  for (const record of message.authorities) {
    if (record.data._tag === "SOA") return Math.min(record.ttl, record.data.minimum)
  }
  return 0
}

const isOfType = <T extends Message.RecordType>(
  record: Message.ResourceRecord,
  type: T
): record is Message.ResourceRecord<Message.RDataFor<T>> => record.data._tag === type

/** A response that settles the query (records, no records, or no such name), as opposed to a server failure. */
const isAnswer = (message: Message.Message): boolean =>
  message.rcode === Message.Rcode.NoError || message.rcode === Message.Rcode.NXDomain

const typeLabel = (type: number): string => Message.typeName(type) ?? `TYPE${type}`

type Resolved<T extends Message.RecordType> =
  | { readonly answer: Answer<T> }
  | { readonly negative: Negative; readonly ttl: number }

/** One resolution of a fully qualified name: the CNAME chain so far and its smallest TTL. */
class Resolution<T extends Message.RecordType> {
  readonly code: number
  readonly original: string
  readonly chain: Array<string> = []
  ttl = Number.POSITIVE_INFINITY
  constructor(
    readonly name: string,
    readonly type: T,
    readonly maxCnameHops: number,
    readonly query: (name: string, type: number) => Effect.Effect<Exchanged, ResolveError>
  ) {
    this.code = Message.TypeCode[type]
    this.original = Message.canonicalName(name)
  }

  /** The resolution after the answer to `asked`: final, a CNAME loop, or the name to ask next. */
  walk(
    { message, server }: Exchanged,
    asked: string
  ): Resolved<T> | { readonly loop: CnameLoop } | { readonly follow: string } {
    const { type, code, original, chain } = this
    if (message.rcode === Message.Rcode.NXDomain) {
      return { negative: new NxDomain({ name: asked, type, server }), ttl: negativeTtl(message) }
    }
    // Walk the chain inside this answer.
    let here = asked
    for (;;) {
      const current = here
      const records: Array<Message.ResourceRecord<Message.RDataFor<T>>> = []
      for (const record of message.answers) {
        if (record.type === code && isOfType(record, type) && Message.sameName(record.name, current)) {
          records.push(record)
          this.ttl = Math.min(this.ttl, record.ttl)
        }
      }
      if (Arr.isArrayNonEmpty(records)) {
        return {
          answer: { name: original, canonicalName: current, cnames: chain, records, ttl: this.ttl, source: server }
        }
      }
      if (type === "CNAME") break
      const cname = message.answers.find(
        (record) => record.data._tag === "CNAME" && Message.sameName(record.name, current)
      )
      if (cname === undefined || cname.data._tag !== "CNAME") break
      const target = Message.canonicalName(cname.data.target)
      this.ttl = Math.min(this.ttl, cname.ttl)
      if (target === original || chain.includes(target) || chain.length >= this.maxCnameHops) {
        return { loop: new CnameLoop({ name: this.name, type, chain: [original, ...chain, target] }) }
      }
      chain.push(target)
      here = target
    }
    if (here === asked) {
      return { negative: new NoData({ name: here, type, server }), ttl: negativeTtl(message) }
    }
    // The chain leaves this server's answer: ask for its end.
    return { follow: here }
  }

  /** The rest of the resolution after the answer to `asked` (hop `hop` of the chain). */
  proceed(exchanged: Exchanged, asked: string, hop: number): Effect.Effect<Resolved<T>, ResolveError> {
    const walked = this.walk(exchanged, asked)
    if ("loop" in walked) return Effect.fail(walked.loop)
    if ("follow" in walked) return this.step(hop + 1, walked.follow)
    return Effect.succeed(walked)
  }

  step(hop: number, asked: string): Effect.Effect<Resolved<T>, ResolveError> {
    if (hop > this.maxCnameHops) {
      return Effect.fail(new CnameLoop({ name: this.name, type: this.type, chain: [this.original, ...this.chain] }))
    }
    return Effect.flatMap(this.query(asked, this.code), (exchanged) => this.proceed(exchanged, asked, hop))
  }
}

const settleResolved = <T extends Message.RecordType>(resolved: Resolved<T>): Effect.Effect<Answer<T>, ResolveError> =>
  "answer" in resolved ? Effect.succeed(resolved.answer) : Effect.fail(resolved.negative)

/**
 * Builds a resolver in the current scope; its sockets close with the scope.
 *
 * @since 0.1.0
 */
export const make = (config: ResolverConfig.ResolverConfig) =>
  Effect.gen(function* () {
    const targets = config.nameservers.map(Transport.target)
    const transport = yield* Transport.make({
      targets,
      size: config.udpSockets,
      queriesPerSocket: config.queriesPerSocket,
      timeout: config.timeout
    })
    const stats: Stats = Object.assign(transport.stats, { cacheHits: 0, cacheMisses: 0, coalesced: 0, cacheSize: 0 })
    const cache = config.cache === false ? undefined : ResolverCache.make<CacheValue>(config.cache)
    const inflight = new Map<string, Deferred.Deferred<Answer | undefined, ResolveError>>()
    let next = 0

    const serverOrder = (): ReadonlyArray<Transport.Target> => {
      if (!config.rotate || targets.length < 2) return targets
      const start = next++ % targets.length
      return [...targets.slice(start), ...targets.slice(0, start)]
    }

    /** The rest of an exchange after its UDP answer: TCP if the answer is truncated. */
    const afterUdp = (
      target: Transport.Target,
      question: Message.Question,
      query: Uint8Array,
      message: Message.Message
    ) =>
      message.tc
        ? Effect.map(transport.tcp(target, question, query, config.timeout), (tcp) => ({ message: tcp, tcp: true }))
        : Effect.succeed({ message, tcp: false })

    /** One exchange with one server: UDP, then TCP if the answer is truncated. */
    const exchange = (target: Transport.Target, question: Message.Question, query: Uint8Array) =>
      Effect.flatMap(transport.udp(target, question, query), (message) => afterUdp(target, question, query, message))

    const encodeQuery = (name: string, type: number, edns: boolean) =>
      Message.encodeQuery({ name, type, udpPayloadSize: edns ? config.ednsPayloadSize : undefined }).pipe(
        Result.mapError((error) => new BadName({ name, detail: error.detail }))
      )

    type Outcome =
      | { readonly _tag: "Done"; readonly exchanged: Exchanged }
      | { readonly _tag: "Next"; readonly failure: ResolveError | undefined; readonly withoutEdns: boolean }

    /** What one exchange with one server means for the query: an answer, or a reason to try the next one. */
    const classify = (
      name: string,
      type: number,
      target: Transport.Target,
      result: Result.Result<{ readonly message: Message.Message; readonly tcp: boolean }, Transport.ExchangeFailure>
    ): Outcome => {
      if (Result.isFailure(result)) {
        const error = result.failure
        const failure =
          error._tag === "Malformed"
            ? new MalformedAnswer({ name, type: typeLabel(type), server: target.label, cause: error.error })
            : error._tag === "Transport"
              ? new TransportError({ server: target.label, cause: error.cause })
              : undefined
        return { _tag: "Next", failure, withoutEdns: false }
      }
      const { message, tcp } = result.success
      if (isAnswer(message)) return { _tag: "Done", exchanged: { message, server: target.label, tcp } }
      switch (message.rcode) {
        case Message.Rcode.Refused:
          return {
            _tag: "Next",
            failure: new Refused({ name, type: typeLabel(type), server: target.label }),
            withoutEdns: false
          }
        default:
          return {
            _tag: "Next",
            failure: new ServerFailure({ name, type: typeLabel(type), server: target.label, rcode: message.rcode }),
            // A server that does not speak EDNS answers FORMERR or BADVERS without OPT: ask without it next.
            withoutEdns:
              (message.rcode === Message.Rcode.FormErr || message.rcode === Message.Rcode.BadVers) &&
              message.edns === undefined
          }
      }
    }

    /** Tries number `from` onwards (server after server, attempt after attempt), after a first failure. */
    const queryRest = (
      name: string,
      type: number,
      order: ReadonlyArray<Transport.Target>,
      from: number,
      first: Outcome
    ): Effect.Effect<Exchanged, ResolveError> =>
      Effect.gen(function* () {
        const question: Message.Question = { name, type, class: Message.ClassIN }
        let failure = first._tag === "Next" ? first.failure : undefined
        let edns = config.ednsPayloadSize !== undefined && !(first._tag === "Next" && first.withoutEdns)
        let bytes = yield* Effect.fromResult(encodeQuery(name, type, edns))
        for (let index = from; index < config.attempts * order.length; index++) {
          const target = order[index % order.length]
          if (target === undefined) continue
          const outcome = classify(name, type, target, yield* Effect.result(exchange(target, question, bytes)))
          if (outcome._tag === "Done") return outcome.exchanged
          failure = outcome.failure ?? failure
          if (outcome.withoutEdns && edns) {
            edns = false
            bytes = yield* Effect.fromResult(encodeQuery(name, type, false))
          }
        }
        return yield* Effect.fail(
          failure ??
            new ResolveTimeout({
              name,
              type: typeLabel(type),
              servers: targets.map((target) => target.label),
              attempts: config.attempts
            })
        )
      })

    /** What the first server's exchange means: the answer, or the rest of the servers and attempts. */
    const afterFirst = (
      name: string,
      type: number,
      order: ReadonlyArray<Transport.Target>,
      target: Transport.Target,
      result: Result.Result<{ readonly message: Message.Message; readonly tcp: boolean }, Transport.ExchangeFailure>
    ): Effect.Effect<Exchanged, ResolveError> => {
      const outcome = classify(name, type, target, result)
      return outcome._tag === "Done" ? Effect.succeed(outcome.exchanged) : queryRest(name, type, order, 1, outcome)
    }

    /** One query: the first usable answer from the servers, in order, over every attempt. */
    const query = (name: string, type: number): Effect.Effect<Exchanged, ResolveError> => {
      const order = serverOrder()
      const target = order[0]
      const encoded = encodeQuery(name, type, config.ednsPayloadSize !== undefined)
      if (Result.isFailure(encoded)) return Effect.fail(encoded.failure)
      if (target === undefined)
        return queryRest(name, type, order, 0, { _tag: "Next", failure: undefined, withoutEdns: false })
      return Effect.flatMap(
        Effect.result(exchange(target, { name, type, class: Message.ClassIN }, encoded.success)),
        (result) => afterFirst(name, type, order, target, result)
      )
    }

    /**
     * Resolves one fully qualified name, following CNAMEs, without the cache. One `Effect.callback` when the
     * first server's UDP answer is the whole story (no truncation, failure or CNAME leaving the answer): the
     * per-query path, where each effect step would cost more than the work it wraps. Anything else continues
     * as effects from where it is.
     */
    const resolveOutcome = <T extends Message.RecordType>(
      name: string,
      type: T,
      /** Told how the resolution ended (interrupted included), before its caller is. */
      onSettled?: (exit: Exit.Exit<Resolved<T>, ResolveError>) => void
    ): Effect.Effect<Resolved<T>, ResolveError> =>
      Effect.callback<Resolved<T>, ResolveError>((resume) => {
        let settled = false
        const tell = (exit: Exit.Exit<Resolved<T>, ResolveError>) => {
          if (settled) return
          settled = true
          onSettled?.(exit)
        }
        const finish = (exit: Exit.Exit<Resolved<T>, ResolveError>) => {
          tell(exit)
          resume(exit)
        }
        const continueWith = (effect: Effect.Effect<Resolved<T>, ResolveError>) => {
          settled = true
          resume(onSettled === undefined ? effect : Effect.onExit(effect, (exit) => Effect.sync(() => onSettled(exit))))
        }
        const resolution = new Resolution(name, type, config.maxCnameHops, query)
        const asked = resolution.original
        const order = serverOrder()
        const target = order[0]
        const encoded = encodeQuery(asked, resolution.code, config.ednsPayloadSize !== undefined)
        if (Result.isFailure(encoded)) return finish(Exit.fail(encoded.failure))
        if (target === undefined) return continueWith(resolution.step(0, asked))
        const question: Message.Question = { name: asked, type: resolution.code, class: Message.ClassIN }
        const cancel = transport.startUdp(target, question, encoded.success, (result) => {
          if (Result.isSuccess(result) && !result.success.tc) {
            const message = result.success
            if (isAnswer(message)) {
              const walked = resolution.walk({ message, server: target.label, tcp: false }, asked)
              if ("loop" in walked) return finish(Exit.fail(walked.loop))
              if ("follow" in walked) return continueWith(resolution.step(1, walked.follow))
              return finish(Exit.succeed(walked))
            }
          }
          const exchanged = Result.isSuccess(result)
            ? Effect.flatMap(Effect.result(afterUdp(target, question, encoded.success, result.success)), (tcp) =>
                afterFirst(asked, resolution.code, order, target, tcp)
              )
            : afterFirst(asked, resolution.code, order, target, Result.fail(result.failure))
          continueWith(Effect.flatMap(exchanged, (first) => resolution.proceed(first, asked, 0)))
        })
        return Effect.sync(() => {
          cancel()
          tell(Exit.interrupt())
        })
      })

    const withAge = <T extends Message.RecordType>(answer: Answer<T>, age: number): Answer<T> => {
      const aged = <R extends Message.ResourceRecord>(record: R): R => ({
        ...record,
        ttl: Math.max(0, record.ttl - age)
      })
      return {
        ...answer,
        records: Arr.map(answer.records, aged),
        ttl: Math.max(0, answer.ttl - age),
        source: "cache"
      }
    }

    /** Resolves one fully qualified name through the cache, joining an identical query in flight. */
    const resolveName = <T extends Message.RecordType>(
      name: string,
      type: T
    ): Effect.Effect<Answer<T>, ResolveError> => {
      if (cache === undefined || config.cache === false)
        return Effect.flatMap(resolveOutcome(name, type), settleResolved)
      const limits = config.cache
      const key = `${Message.canonicalName(name)}|${type}`
      return Effect.clockWith((clock) => {
        const now = clock.currentTimeMillisUnsafe()
        const hit = cache.get(key, now)
        if (hit !== undefined) {
          stats.cacheHits++
          if (hit.value._tag === "Negative") return Effect.fail(hit.value.error)
          return Effect.succeed(withAge(ofType<T>(hit.value.answer), hit.age))
        }
        const running = inflight.get(key)
        if (running !== undefined) {
          stats.coalesced++
          // `undefined`: the caller running the query gave up (interrupted); ask again.
          return Effect.flatMap(Deferred.await(running), (joined) =>
            joined === undefined ? resolveName(name, type) : Effect.succeed(ofType<T>(joined))
          )
        }
        stats.cacheMisses++
        const deferred = Deferred.makeUnsafe<Answer | undefined, ResolveError>()
        inflight.set(key, deferred)
        // The first caller runs the query; the others wait for its outcome.
        const settled = (exit: Exit.Exit<Resolved<T>, ResolveError>) => {
          inflight.delete(key)
          if (Exit.isSuccess(exit)) {
            // TTLs count from when the query was sent: an entry never outlives its records.
            const outcome = exit.value
            if ("answer" in outcome) {
              const entry: CacheValue = { _tag: "Positive", answer: erase(outcome.answer) }
              cache.set(key, entry, Math.min(outcome.answer.ttl, limits.maxTtl), now)
            } else {
              const entry: CacheValue = { _tag: "Negative", error: outcome.negative }
              cache.set(key, entry, Math.min(outcome.ttl, limits.maxNegativeTtl), now)
            }
          }
          Deferred.doneUnsafe(
            deferred,
            Exit.hasInterrupts(exit)
              ? Effect.succeed(undefined)
              : Effect.flatMap(exit, (outcome) =>
                  "answer" in outcome ? Effect.succeed(erase(outcome.answer)) : Effect.fail(outcome.negative)
                )
          )
        }
        return Effect.flatMap(resolveOutcome(name, type, settled), settleResolved)
      })
    }

    /** The names to try for `name`, in order (resolv.conf's search list and ndots). */
    const candidates = (name: string): ReadonlyArray<string> => {
      if (name.endsWith(".")) return [name.slice(0, -1)]
      if (config.search.length === 0) return [name]
      const dots = name.split(".").length - 1
      const searched = config.search.map((domain) => `${name}.${domain}`)
      return dots >= config.ndots ? [name, ...searched] : [...searched, name]
    }

    const resolve = <T extends Message.RecordType>(name: string, type: T): Effect.Effect<Answer<T>, ResolveError> => {
      if (config.search.length === 0 && name !== "" && name !== ".") {
        return resolveName(name.endsWith(".") ? name.slice(0, -1) : name, type)
      }
      return resolveSearching(name, type)
    }

    const resolveSearching = <T extends Message.RecordType>(
      name: string,
      type: T
    ): Effect.Effect<Answer<T>, ResolveError> =>
      Effect.gen(function* () {
        // Other malformed names fail with BadName when their query is encoded.
        if (name === "" || name === ".") return yield* Effect.fail(new BadName({ name, detail: "empty name" }))
        const names = candidates(name)
        const [only] = names
        if (names.length === 1 && only !== undefined) return yield* resolveName(only, type)
        let firstError: ResolveError | undefined
        for (const candidate of names) {
          const result = yield* Effect.result(resolveName(candidate, type))
          if (Result.isSuccess(result)) return result.success
          firstError ??= result.failure
          // Only "no such name/record" moves on to the next candidate.
          if (result.failure._tag !== "NxDomain" && result.failure._tag !== "NoData") break
        }
        return yield* Effect.fail(firstError ?? new BadName({ name, detail: "no candidate name" }))
      })

    const lookupFamily = (host: string, type: "A" | "AAAA") =>
      Effect.map(resolve(host, type), (answer) => Arr.map(answer.records, (record) => record.data.address))

    const lookup: ResolverService["lookup"] = (host, options) =>
      Effect.gen(function* () {
        const literal = NetAddress.ipFromString(host)
        if (Result.isSuccess(literal)) {
          const family = NetAddress.isIpv4Address(literal.success) ? "IPv4" : "IPv6"
          if (options?.family === undefined || options.family === family) {
            return [NetAddress.formatIp(literal.success)] as const
          }
          return yield* Effect.fail(
            new NoData({ name: host, type: options.family === "IPv4" ? "A" : "AAAA", server: "literal" })
          )
        }
        const fromHosts = (config.hosts.get(Message.canonicalName(host)) ?? []).filter(
          (address) => options?.family === undefined || (options.family === "IPv4") === !address.includes(":")
        )
        const [hostsFirst, ...hostsRest] = fromHosts
        if (hostsFirst !== undefined) return [hostsFirst, ...hostsRest] as const
        if (options?.family === "IPv4") return yield* lookupFamily(host, "A")
        if (options?.family === "IPv6") return yield* lookupFamily(host, "AAAA")
        const [v4, v6] = yield* Effect.all(
          [Effect.result(lookupFamily(host, "A")), Effect.result(lookupFamily(host, "AAAA"))],
          {
            concurrency: 2
          }
        )
        const addresses = [...(Result.isSuccess(v4) ? v4.success : []), ...(Result.isSuccess(v6) ? v6.success : [])]
        const [first, ...rest] = addresses
        if (first !== undefined) return [first, ...rest] as const
        // Both failed: report the IPv4 failure unless it is only "no A record".
        return yield* Effect.fail(
          Result.isFailure(v4) && (v4.failure._tag !== "NoData" || Result.isSuccess(v6))
            ? v4.failure
            : Result.isFailure(v6)
              ? v6.failure
              : new NoData({ name: host, type: "A", server: "dns" })
        )
      })

    const reverse: ResolverService["reverse"] = (address) =>
      Effect.gen(function* () {
        const parsed = NetAddress.ipFromString(address)
        if (Result.isFailure(parsed))
          return yield* Effect.fail(new BadName({ name: address, detail: "not an IP address" }))
        const answer = yield* resolve(`${Dns.reverseName(parsed.success)}.`, "PTR")
        const [first, ...rest] = answer.records
        return [first.data.host, ...rest.map((record) => record.data.host)] as const
      })

    const traced = <A, E>(
      effect: Effect.Effect<A, E>,
      span: string,
      attributes: Record<string, unknown>
    ): Effect.Effect<A, E> =>
      config.spans ? Effect.withSpan(effect, span, { attributes, captureStackTrace: false }) : effect

    const service: ResolverService = {
      config,
      resolve: (name, type) => traced(resolve(name, type), "Resolver.resolve", { name, type }),
      lookup: (host, options) => traced(lookup(host, options), "Resolver.lookup", { host }),
      reverse: (address) => traced(reverse(address), "Resolver.reverse", { address }),
      query: (name, type) => query(name, typeof type === "number" ? type : Message.TypeCode[type]),
      stats: () => ({ ...stats, cacheSize: cache?.size() ?? 0 }),
      ports: transport.ports,
      clearCache: Effect.sync(() => cache?.clear())
    }
    return service
  })

/**
 * A resolver layer from explicit settings (defaults for the rest; see `ResolverConfig.make`).
 *
 * @since 0.1.0
 */
export const layer = (input: ResolverConfig.Input = {}): Layer.Layer<Resolver> =>
  Layer.effect(Resolver, make(ResolverConfig.make(input)))

/**
 * A resolver layer from `/etc/resolv.conf` and `/etc/hosts`, with `overrides` on top.
 *
 * @since 0.1.0
 */
export const layerSystem = (overrides: ResolverConfig.Input = {}): Layer.Layer<Resolver> =>
  Layer.effect(Resolver, Effect.flatMap(ResolverConfig.system(overrides), make))

/**
 * Resolves `name` to records of `type` with the `Resolver` in context.
 *
 * @since 0.1.0
 */
export const resolve = <T extends Message.RecordType>(name: string, type: T) =>
  Resolver.use((resolver) => resolver.resolve(name, type))

/**
 * Looks up the addresses of `host` with the `Resolver` in context.
 *
 * @since 0.1.0
 */
export const lookup = (host: string, options?: { readonly family?: "IPv4" | "IPv6" | undefined }) =>
  Resolver.use((resolver) => resolver.lookup(host, options))

/**
 * The names of `address` with the `Resolver` in context.
 *
 * @since 0.1.0
 */
export const reverse = (address: string) => Resolver.use((resolver) => resolver.reverse(address))
