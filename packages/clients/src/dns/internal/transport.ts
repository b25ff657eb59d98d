/**
 * How queries reach name servers: a pool of UDP sockets with a demultiplexer, and one TCP connection per
 * truncated answer. Everything goes through `@diesel/core`'s `Network` seam.
 *
 * Spoofing resistance: each socket is bound to a random port and replaced by one on a fresh random port
 * after `queriesPerSocket` queries; each query gets a random ID unused on its socket; an answer is accepted
 * only when it comes from the server asked, carries the ID, is a response, and repeats the question.
 * Anything else is counted and dropped, and the query keeps waiting for the genuine answer.
 */
import { Network } from "@diesel/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Latch from "effect/Latch"
import * as NetAddress from "effect/net/NetAddress"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import * as Socket from "effect/socket/Socket"
import * as Message from "../Message.js"
import { formatNameServer, type NameServer } from "../ResolverConfig.js"
import { frame, LengthPrefixed } from "./framing.js"
import { randomBelow, randomPort, randomUint16 } from "./random.js"

/** A name server with what the transport needs precomputed. */
export interface Target {
  readonly server: NameServer
  readonly label: string
  readonly key: string
  readonly inet: NetAddress.InetAddress
}

export const target = (server: NameServer): Target => ({
  server,
  label: formatNameServer(server),
  key: `${server.host}|${server.port}`,
  inet: NetAddress.inetAddressFromIpStringUnsafe(server.host, server.port)
})

/** Why one exchange with one server gave no usable answer. */
export type ExchangeFailure =
  | { readonly _tag: "Timeout" }
  | { readonly _tag: "Malformed"; readonly error: Message.DecodeError | string }
  | { readonly _tag: "Transport"; readonly cause: unknown }

/** Counters of the transport, for tests and metrics. */
export interface Stats {
  /** Queries sent over UDP. */
  udpQueries: number
  /** Queries sent over TCP (after a truncated UDP answer). */
  tcpQueries: number
  /** Datagrams dropped: unknown ID, wrong source, not a response, or wrong question. */
  rejected: number
  /** Datagrams with a pending ID and the right source that could not be decoded. */
  malformed: number
  /** UDP sockets opened so far (the pool, and replacements). */
  socketsOpened: number
}

interface Pending {
  readonly id: number
  readonly slot: Slot
  readonly target: Target
  readonly question: Message.Question
  readonly resume: (effect: Effect.Effect<Message.Message, ExchangeFailure>) => void
  /** The sweeper tick at which the query times out. */
  readonly expiresAt: number
  malformed: Message.DecodeError | undefined
}

interface Slot {
  readonly family: "ipv4" | "ipv6"
  readonly port: number
  readonly scope: Scope.Closeable
  readonly pending: Map<number, Pending>
  /** Datagrams waiting for the sender fiber, which writes them in batches. */
  outbox: Array<{ readonly pending: Pending; readonly datagram: DatagramSocket.OutgoingDatagram }>
  readonly wakeSender: Latch.Latch
  uses: number
  replacing: boolean
  retired: boolean
}

export interface Transport {
  readonly udp: (
    target: Target,
    question: Message.Question,
    query: Uint8Array,
    timeout: Duration.Duration
  ) => Effect.Effect<Message.Message, ExchangeFailure>
  readonly tcp: (
    target: Target,
    question: Message.Question,
    query: Uint8Array,
    timeout: Duration.Duration
  ) => Effect.Effect<Message.Message, ExchangeFailure>
  readonly stats: Stats
  /** The local ports of the sockets in the pool now. */
  readonly ports: () => ReadonlyArray<number>
}

const timeoutFailure: ExchangeFailure = { _tag: "Timeout" }

const withId = (query: Uint8Array, id: number): Uint8Array => {
  const bytes = query.slice()
  bytes[0] = id >> 8
  bytes[1] = id & 0xff
  return bytes
}

const matches = (message: Message.Message, question: Message.Question): boolean => {
  const asked = message.questions[0]
  return message.qr && message.questions.length === 1 && asked !== undefined && Message.sameQuestion(asked, question)
}

/**
 * Opens the UDP socket pool (`size` sockets per address family in use) in the current scope.
 */
export const make = (options: {
  readonly families: ReadonlyArray<"ipv4" | "ipv6">
  readonly size: number
  readonly queriesPerSocket: number
  /** How long a UDP query waits for its answer. */
  readonly timeout: Duration.Duration
}): Effect.Effect<Transport, never, Scope.Scope> =>
  Effect.gen(function* () {
    const net = yield* Network.Network
    const poolScope = yield* Effect.scope
    const stats: Stats = { udpQueries: 0, tcpQueries: 0, rejected: 0, malformed: 0, socketsOpened: 0 }
    const pools: Record<"ipv4" | "ipv6", Array<Slot>> = { ipv4: [], ipv6: [] }
    const openErrors: Partial<Record<"ipv4" | "ipv6", unknown>> = {}

    // Timeouts: one sweeper fiber advances a tick counter every `tick` while queries are pending and fails
    // those past their deadline, instead of a timer and a fiber per query.
    const timeoutMillis = Math.max(1, Duration.toMillis(options.timeout))
    const tick = Math.min(250, Math.max(5, Math.ceil(timeoutMillis / 8)))
    const ticksPerTimeout = Math.ceil(timeoutMillis / tick)
    let now = 0
    const active = new Set<Pending>()
    const wakeSweeper = Latch.makeUnsafe(false)

    const settle = (pending: Pending, effect: Effect.Effect<Message.Message, ExchangeFailure>) => {
      if (pending.slot.pending.get(pending.id) === pending) pending.slot.pending.delete(pending.id)
      if (active.delete(pending)) pending.resume(effect)
    }

    const sweeper = Effect.gen(function* () {
      for (;;) {
        if (active.size === 0) {
          wakeSweeper.closeUnsafe()
          yield* wakeSweeper.await
        }
        yield* Effect.sleep(tick)
        now++
        for (const pending of active) {
          if (pending.expiresAt > now) continue
          settle(
            pending,
            Effect.fail(
              pending.malformed === undefined ? timeoutFailure : { _tag: "Malformed", error: pending.malformed }
            )
          )
        }
      }
    })
    yield* Effect.forkIn(sweeper, poolScope, { startImmediately: true })

    const closeSlot = (slot: Slot) => Scope.close(slot.scope, Exit.void)

    const dispatch = (slot: Slot, datagram: DatagramSocket.Datagram) => {
      const bytes = datagram.payload
      const id = Message.peekId(bytes)
      const pending = id === undefined ? undefined : slot.pending.get(id)
      if (id === undefined || pending === undefined) {
        stats.rejected++
        return
      }
      const from = datagram.address
      const asked = pending.target.inet
      // The address's own comparison: `Equal.equals` would hash both first.
      if (from.port !== asked.port || !asked.address[Equal.symbol](from.address)) {
        stats.rejected++
        return
      }
      const decoded = Message.decode(bytes)
      if (Result.isFailure(decoded)) {
        stats.malformed++
        pending.malformed = decoded.failure
        return
      }
      if (!matches(decoded.success, pending.question)) {
        stats.rejected++
        return
      }
      settle(pending, Effect.succeed(decoded.success))
    }

    const readLoop = (slot: Slot, reader: DatagramSocket.Reader) =>
      Effect.forever(
        Effect.map(reader.pull, (batch) => {
          for (const datagram of batch) dispatch(slot, datagram)
        })
      ).pipe(
        // A socket that cannot read any more is retired; its waiting queries time out and are retried.
        Effect.catch(() =>
          Effect.sync(() => {
            slot.retired = true
          })
        )
      )

    // Each loop is `Effect.forever` of a short step: a generator looping forever is measurably slower.
    const sendStep = (slot: Slot, writer: DatagramSocket.Writer) =>
      Effect.suspend(() => {
        slot.wakeSender.closeUnsafe()
        const batch = slot.outbox
        slot.outbox = []
        const [first, ...rest] = batch
        if (first === undefined) return Effect.void
        const rotate =
          slot.uses >= options.queriesPerSocket && !slot.replacing
            ? Effect.suspend(() => {
                slot.replacing = true
                return Effect.asVoid(Effect.forkIn(replace(slot), poolScope))
              })
            : Effect.void
        return writer.writeAll([first.datagram, ...rest.map((entry) => entry.datagram)]).pipe(
          Effect.catch((cause) =>
            Effect.sync(() => {
              for (const entry of batch) settle(entry.pending, Effect.fail({ _tag: "Transport", cause }))
            })
          ),
          Effect.andThen(rotate)
        )
      })

    const sendLoop = (slot: Slot, writer: DatagramSocket.Writer) =>
      Effect.forever(Effect.andThen(slot.wakeSender.await, sendStep(slot, writer)))

    const bindOnce = (family: "ipv4" | "ipv6", port: number) =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(poolScope)
        const socket = yield* net.datagramSocket({
          family,
          bind: { address: family === "ipv4" ? "0.0.0.0" : "::", port }
        })
        const opened = yield* socket.reader.pipe(Scope.provide(scope), Effect.result)
        if (Result.isFailure(opened)) {
          yield* Scope.close(scope, Exit.void)
          return yield* Effect.fail(opened.failure)
        }
        const writer = yield* socket.writer.pipe(Scope.provide(scope))
        const slot: Slot = {
          family,
          port: opened.success.address.port,
          scope,
          pending: new Map(),
          outbox: [],
          wakeSender: Latch.makeUnsafe(false),
          uses: 0,
          replacing: false,
          retired: false
        }
        yield* Effect.forkIn(readLoop(slot, opened.success), scope, { startImmediately: true })
        yield* Effect.forkIn(sendLoop(slot, writer), scope, { startImmediately: true })
        stats.socketsOpened++
        return slot
      })

    /** A socket on a random port; after a few ports in use, any port the kernel picks. */
    const openSlot = (family: "ipv4" | "ipv6") =>
      Effect.gen(function* () {
        for (let attempt = 0; attempt < 8; attempt++) {
          const slot = yield* bindOnce(family, randomPort()).pipe(Effect.option)
          if (Option.isSome(slot)) return slot.value
        }
        return yield* bindOnce(family, 0)
      })

    for (const family of options.families) {
      for (let i = 0; i < options.size; i++) {
        const slot = yield* openSlot(family).pipe(Effect.result)
        if (Result.isSuccess(slot)) pools[family].push(slot.success)
        else openErrors[family] = slot.failure
      }
    }

    /** Replaces a socket by one on a fresh random port; the old one closes once its queries are settled. */
    function replace(slot: Slot): Effect.Effect<void> {
      return openSlot(slot.family).pipe(
        Effect.flatMap((fresh) =>
          Effect.gen(function* () {
            const pool = pools[slot.family]
            const index = pool.indexOf(slot)
            if (index === -1) return yield* closeSlot(fresh)
            pool[index] = fresh
            slot.retired = true
            while (slot.pending.size > 0 || slot.outbox.length > 0) yield* Effect.sleep(tick)
            yield* closeSlot(slot)
          })
        ),
        Effect.catch(() =>
          Effect.sync(() => {
            slot.replacing = false
            slot.uses = 0
          })
        )
      )
    }

    const pick = (family: "ipv4" | "ipv6"): Slot | undefined => {
      const pool = pools[family]
      // Skip retired sockets (a failed reader) when there is another.
      for (let tries = 0; tries < 4; tries++) {
        const slot = pool[randomBelow(pool.length)]
        if (slot !== undefined && !slot.retired) return slot
      }
      return pool.find((slot) => !slot.retired)
    }

    const udp: Transport["udp"] = (target, question, query) =>
      Effect.callback<Message.Message, ExchangeFailure>((resume) => {
        const slot = pick(target.server.family)
        if (slot === undefined) {
          resume(
            Effect.fail({
              _tag: "Transport",
              cause: openErrors[target.server.family] ?? `no ${target.server.family} socket`
            })
          )
          return
        }
        let id = randomUint16()
        while (slot.pending.has(id)) id = randomUint16()
        const pending: Pending = {
          id,
          slot,
          target,
          question,
          resume,
          expiresAt: now + ticksPerTimeout + 1,
          malformed: undefined
        }
        slot.pending.set(id, pending)
        active.add(pending)
        if (active.size === 1) wakeSweeper.openUnsafe()
        slot.outbox.push({ pending, datagram: { payload: withId(query, id), address: target.inet } })
        if (slot.outbox.length === 1) slot.wakeSender.openUnsafe()
        slot.uses++
        stats.udpQueries++
        return Effect.sync(() => {
          if (slot.pending.get(id) === pending) slot.pending.delete(id)
          active.delete(pending)
        })
      })

    const tcp: Transport["tcp"] = (target, question, query, timeout) =>
      Effect.gen(function* () {
        stats.tcpQueries++
        const socket = yield* net.connect({ host: target.server.host, port: target.server.port, timeout })
        const pull = yield* Socket.readerBytes(socket)
        const writer = yield* socket.writer
        const id = randomUint16()
        yield* writer.write(frame(withId(query, id)))
        const framer = new LengthPrefixed()
        for (;;) {
          for (const chunk of yield* pull) {
            for (const bytes of framer.push(chunk)) {
              const decoded = Message.decode(bytes)
              if (Result.isFailure(decoded)) {
                return yield* Effect.fail<ExchangeFailure>({ _tag: "Malformed", error: decoded.failure })
              }
              if (decoded.success.id === id && matches(decoded.success, question)) return decoded.success
              stats.rejected++
            }
          }
        }
      }).pipe(
        Effect.scoped,
        Effect.mapError(
          (error): ExchangeFailure => (Socket.isSocketError(error) ? { _tag: "Transport", cause: error } : error)
        ),
        Effect.timeoutOption(timeout),
        Effect.flatMap((answer) => (Option.isSome(answer) ? Effect.succeed(answer.value) : Effect.fail(timeoutFailure)))
      )

    return {
      udp,
      tcp,
      stats,
      ports: () => [...pools.ipv4, ...pools.ipv6].map((slot) => slot.port)
    }
  })
