/**
 * How queries reach name servers: per name server, a pool of UDP sockets connected to it, and one TCP
 * connection per truncated answer. Everything goes through `@diesel/core`'s `Network` seam.
 *
 * Spoofing resistance: each socket is bound to a random port and connected to its server (the kernel then
 * delivers only that server's datagrams), and replaced by one on a fresh random port after
 * `queriesPerSocket` queries; each query gets a random ID unused on its socket; an answer is accepted only
 * when it carries the ID, is a response, and repeats the question. Anything else is counted and dropped, and
 * the query keeps waiting for the genuine answer.
 *
 * The UDP path has no fiber of its own: sockets are `Network.openDatagram`'s callback-level sockets, an
 * answer settles its query from the socket's packet callback, and the datagrams queued while the event loop
 * was busy are sent together by one task on the Effect scheduler.
 */
import { Network } from "@diesel/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Latch from "effect/Latch"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Scheduler from "effect/Scheduler"
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
}

export const target = (server: NameServer): Target => ({
  server,
  label: formatNameServer(server),
  key: `${server.host}|${server.port}`
})

/** Why one exchange with one server gave no usable answer. */
export type ExchangeFailure =
  | { readonly _tag: "Timeout" }
  | { readonly _tag: "Malformed"; readonly error: Message.DecodeError | string }
  | { readonly _tag: "Transport"; readonly cause: unknown }

/** How a UDP exchange ended. */
export type Done = (result: Result.Result<Message.Message, ExchangeFailure>) => void

/** Counters of the transport, for tests and metrics. */
export interface Stats {
  /** Queries sent over UDP. */
  udpQueries: number
  /** Queries sent over TCP (after a truncated UDP answer). */
  tcpQueries: number
  /** Datagrams dropped: unknown ID, not a response, or wrong question. */
  rejected: number
  /** Datagrams with a pending ID that could not be decoded. */
  malformed: number
  /** UDP sockets opened so far (the pools, and replacements). */
  socketsOpened: number
}

interface Slot {
  readonly target: Target
  readonly socket: DatagramSocket.BackingSocket
  readonly port: number
  readonly scope: Scope.Closeable
  readonly pending: Map<number, Pending>
  uses: number
  replacing: boolean
  /** Replaced (worn out, or broken): no new queries unless there is no other socket. */
  retired: boolean
  /** Cannot read any more (closed underneath, or a read error). */
  broken: boolean
}

class Pending {
  /** Whether the query is still waiting (not answered, failed or cancelled). */
  waiting = true
  malformed: Message.DecodeError | undefined = undefined
  constructor(
    readonly id: number,
    readonly slot: Slot,
    readonly question: Message.Question,
    readonly bytes: Uint8Array,
    readonly done: Done,
    /** The sweeper tick at which the query times out. */
    readonly expiresAt: number,
    readonly onSent: (error?: DatagramSocket.DatagramSocketError) => void
  ) {}
}

export interface Transport {
  /**
   * Sends `query` (its ID is replaced by a fresh random one) to `target` over UDP; `done` is called once with
   * the answer or why there is none, unless the returned cancel function runs first.
   */
  readonly startUdp: (target: Target, question: Message.Question, query: Uint8Array, done: Done) => () => void
  /** `startUdp` as an effect; interrupting it cancels the query. */
  readonly udp: (
    target: Target,
    question: Message.Question,
    query: Uint8Array
  ) => Effect.Effect<Message.Message, ExchangeFailure>
  readonly tcp: (
    target: Target,
    question: Message.Question,
    query: Uint8Array,
    timeout: Duration.Duration
  ) => Effect.Effect<Message.Message, ExchangeFailure>
  readonly stats: Stats
  /** The local ports of the sockets in the pools now. */
  readonly ports: () => ReadonlyArray<number>
}

const timeoutFailure: ExchangeFailure = { _tag: "Timeout" }
const timedOut: Result.Result<never, ExchangeFailure> = Result.fail(timeoutFailure)

const withId = (query: Uint8Array, id: number): Uint8Array => {
  const bytes = query.slice()
  bytes[0] = id >> 8
  bytes[1] = id & 0xff
  return bytes
}

const refused = (error: DatagramSocket.DatagramSocketError): boolean =>
  error.reason._tag === "DatagramSocketReadError" && error.reason.kind === "ConnectionRefused"

const matches = (message: Message.Message, question: Message.Question): boolean => {
  const asked = message.questions[0]
  return message.qr && message.questions.length === 1 && asked !== undefined && Message.sameQuestion(asked, question)
}

/**
 * Opens the UDP socket pools (`size` sockets per name server) in the current scope.
 */
export const make = (options: {
  readonly targets: ReadonlyArray<Target>
  readonly size: number
  readonly queriesPerSocket: number
  /** How long a UDP query waits for its answer. */
  readonly timeout: Duration.Duration
}): Effect.Effect<Transport, never, Scope.Scope> =>
  Effect.gen(function* () {
    const net = yield* Network.Network
    const poolScope = yield* Effect.scope
    const dispatcher = (yield* Scheduler.Scheduler).makeDispatcher()
    const stats: Stats = { udpQueries: 0, tcpQueries: 0, rejected: 0, malformed: 0, socketsOpened: 0 }
    const pools = new Map<string, Array<Slot>>()
    const openErrors = new Map<string, unknown>()

    // Timeouts: one sweeper fiber advances a tick counter every `tick` while queries are pending and fails
    // those past their deadline, instead of a timer and a fiber per query.
    const timeoutMillis = Math.max(1, Duration.toMillis(options.timeout))
    const tick = Math.min(250, Math.max(5, Math.ceil(timeoutMillis / 8)))
    const ticksPerTimeout = Math.ceil(timeoutMillis / tick)
    let now = 0
    const active = new Set<Pending>()
    const wakeSweeper = Latch.makeUnsafe(false)

    /** Stops waiting for `pending`'s answer; `false` if it was not waiting any more. */
    const forget = (pending: Pending): boolean => {
      if (!pending.waiting) return false
      pending.waiting = false
      if (pending.slot.pending.get(pending.id) === pending) pending.slot.pending.delete(pending.id)
      active.delete(pending)
      return true
    }

    const settle = (pending: Pending, result: Result.Result<Message.Message, ExchangeFailure>) => {
      if (forget(pending)) pending.done(result)
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
            pending.malformed === undefined ? timedOut : Result.fail({ _tag: "Malformed", error: pending.malformed })
          )
        }
      }
    })
    yield* Effect.forkIn(sweeper, poolScope, { startImmediately: true })

    // Datagrams queued since the last flush, sent together by one scheduler task: the sends that the answers
    // of one event-loop turn trigger go out as a burst.
    let outbox: Array<Pending> = []
    const flush = () => {
      const batch = outbox
      outbox = []
      for (const pending of batch) {
        if (pending.waiting) pending.slot.socket.send(pending.bytes, undefined, pending.onSent)
      }
    }

    const dispatch = (slot: Slot, payload: Uint8Array, port: number) => {
      const id = Message.peekId(payload)
      const pending = id === undefined ? undefined : slot.pending.get(id)
      // The socket is connected to its server, so the kernel drops other sources; the port check is for
      // networks that do not.
      if (pending === undefined || port !== slot.target.server.port) {
        stats.rejected++
        return
      }
      const decoded = Message.decode(payload)
      if (Result.isFailure(decoded)) {
        // Remembered: if no valid answer follows, the query fails with it instead of timing out.
        stats.malformed++
        pending.malformed = decoded.failure
        return
      }
      if (!matches(decoded.success, pending.question)) {
        stats.rejected++
        return
      }
      settle(pending, Result.succeed(decoded.success))
    }

    /** Sockets to replace (worn out after `queriesPerSocket` queries, or broken), run by one maintenance fiber. */
    const worn: Array<Slot> = []
    const wakeMaintenance = Latch.makeUnsafe(false)
    const scheduleReplacement = (slot: Slot) => {
      if (slot.replacing) return
      slot.replacing = true
      worn.push(slot)
      wakeMaintenance.openUnsafe()
    }
    const broke = (slot: Slot | undefined) => {
      if (slot === undefined) return
      slot.broken = true
      slot.retired = true
      scheduleReplacement(slot)
    }

    const bindOnce = (target: Target, port: number) =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(poolScope)
        const pending = new Map<number, Pending>()
        let slot: Slot | undefined
        const events: DatagramSocket.BackingEvents = {
          onPacket: (payload, _host, fromPort) => {
            if (slot !== undefined) dispatch(slot, payload, fromPort)
          },
          // A socket that cannot read any more is replaced; its waiting queries time out and are retried.
          onReadError: () => broke(slot),
          onClose: () => broke(slot),
          // ICMP port unreachable reaches a connected socket: nothing listens on the server's port, so its
          // waiting queries move on to the next server now instead of at their timeout (as c-ares does).
          onError: (error) => {
            if (slot === undefined || !refused(error)) return
            const failure = Result.fail<ExchangeFailure>({ _tag: "Transport", cause: error })
            for (const pending of [...slot.pending.values()]) settle(pending, failure)
          }
        }
        const family = target.server.family
        const socket = yield* net
          .openDatagram(
            {
              family,
              bind: { address: family === "ipv4" ? "0.0.0.0" : "::", port },
              connect: { address: target.server.host, port: target.server.port }
            },
            events
          )
          .pipe(
            Scope.provide(scope),
            Effect.tapError(() => Scope.close(scope, Exit.void))
          )
        slot = {
          target,
          socket,
          port: socket.address.port,
          scope,
          pending,
          uses: 0,
          replacing: false,
          retired: false,
          broken: false
        }
        stats.socketsOpened++
        return slot
      })

    /** A socket on a random port; after a few ports in use, any port the kernel picks. */
    const openSlot = (target: Target) =>
      Effect.gen(function* () {
        for (let attempt = 0; attempt < 8; attempt++) {
          const slot = yield* bindOnce(target, randomPort()).pipe(Effect.option)
          if (Option.isSome(slot)) return slot.value
        }
        return yield* bindOnce(target, 0)
      })

    for (const each of options.targets) {
      if (pools.has(each.key)) continue
      const pool: Array<Slot> = []
      pools.set(each.key, pool)
      for (let i = 0; i < options.size; i++) {
        const slot = yield* openSlot(each).pipe(Effect.result)
        if (Result.isSuccess(slot)) pool.push(slot.success)
        else openErrors.set(each.key, slot.failure)
      }
    }

    /** Replaces a socket by one on a fresh random port; the old one closes once its queries are settled. */
    const replace = (slot: Slot): Effect.Effect<void> =>
      openSlot(slot.target).pipe(
        Effect.flatMap((fresh) =>
          Effect.gen(function* () {
            const pool = pools.get(slot.target.key) ?? []
            const index = pool.indexOf(slot)
            if (index === -1) return yield* Scope.close(fresh.scope, Exit.void)
            pool[index] = fresh
            slot.retired = true
            while (slot.pending.size > 0) yield* Effect.sleep(tick)
            yield* Scope.close(slot.scope, Exit.void)
          })
        ),
        Effect.catch(() =>
          Effect.sync(() => {
            slot.replacing = false
            slot.uses = 0
          })
        )
      )

    const maintenance = Effect.forever(
      Effect.andThen(
        wakeMaintenance.await,
        Effect.suspend(() => {
          wakeMaintenance.closeUnsafe()
          const slots = worn.splice(0)
          return Effect.forEach(slots, (slot) => Effect.forkIn(replace(slot), poolScope), { discard: true })
        })
      )
    )
    yield* Effect.forkIn(maintenance, poolScope, { startImmediately: true })

    const pick = (target: Target): Slot | undefined => {
      const pool = pools.get(target.key)
      if (pool === undefined) return undefined
      // Skip retired sockets (worn out or broken, being replaced) when there is another.
      for (let tries = 0; tries < 4; tries++) {
        const slot = pool[randomBelow(pool.length)]
        if (slot !== undefined && !slot.retired) return slot
      }
      const usable = pool.find((slot) => !slot.retired) ?? pool.find((slot) => !slot.broken)
      // Every socket is broken: ask for replacements again (the last try may have failed), fail this query.
      if (usable === undefined) for (const slot of pool) scheduleReplacement(slot)
      return usable
    }

    const noCancel = () => undefined

    const startUdp: Transport["startUdp"] = (target, question, query, done) => {
      const slot = pick(target)
      if (slot === undefined) {
        done(
          Result.fail({
            _tag: "Transport",
            cause: openErrors.get(target.key) ?? `no socket for ${target.label}`
          })
        )
        return noCancel
      }
      let id = randomUint16()
      while (slot.pending.has(id)) id = randomUint16()
      const pending: Pending = new Pending(
        id,
        slot,
        question,
        withId(query, id),
        done,
        now + ticksPerTimeout + 1,
        (error) => {
          if (error !== undefined) settle(pending, Result.fail({ _tag: "Transport", cause: error }))
        }
      )
      slot.pending.set(id, pending)
      active.add(pending)
      if (active.size === 1) wakeSweeper.openUnsafe()
      outbox.push(pending)
      if (outbox.length === 1) dispatcher.scheduleTask(flush, 0)
      stats.udpQueries++
      if (++slot.uses >= options.queriesPerSocket) scheduleReplacement(slot)
      return () => {
        forget(pending)
      }
    }

    const udp: Transport["udp"] = (target, question, query) =>
      Effect.callback<Message.Message, ExchangeFailure>((resume) => {
        const cancel = startUdp(target, question, query, (result) => resume(Effect.fromResult(result)))
        return Effect.sync(cancel)
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
      startUdp,
      udp,
      tcp,
      stats,
      ports: () => [...pools.values()].flatMap((pool) => pool.map((slot) => slot.port))
    }
  })
