/**
 * Metrics of UDP sockets, as Effect `Metric`s.
 *
 * Every socket keeps plain counters (`Stats`) that its hot path bumps with no allocation, and registers
 * them as Effect metric series (`Metric.registerUnsafe`) for the life of the socket: a snapshot or an
 * exporter reads them when it runs. Each series carries the attribute `socket` (`"server 127.0.0.1:4000"`,
 * `"client 127.0.0.1:53011"`), and per-reason series an attribute `reason`.
 *
 * | metric | type | attributes |
 * |---|---|---|
 * | `udp_conversations_live` | gauge | socket |
 * | `udp_conversations_started_total` | counter | socket |
 * | `udp_conversations_ended_total` | counter | socket, reason (`EndReason`) |
 * | `udp_datagrams_in_total`, `udp_bytes_in_total` | counter | socket |
 * | `udp_datagrams_out_total`, `udp_bytes_out_total` | counter | socket |
 * | `udp_datagrams_dropped_total` | counter | socket, reason (`DropReason`) |
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import * as Metric from "effect/Metric"

/**
 * Why a conversation ended.
 *
 * - `completed`: its handler (and every loop it forked) returned.
 * - `failed`: its handler failed or died.
 * - `interrupted`: it was interrupted from inside (or by code that holds its fiber).
 * - `idle`: no datagram from the peer for the idle timeout.
 * - `evicted`: the table was full and it was the least recently active (`overflow: "evictOldestIdle"`).
 * - `refused`: the accept hook said no (or failed).
 * - `shutdown`: the socket was closed.
 *
 * @since 0.1.0
 */
export type EndReason = "completed" | "failed" | "interrupted" | "idle" | "evicted" | "refused" | "shutdown"

/**
 * Why a datagram was dropped.
 *
 * - `mailboxFull`: the conversation's mailbox was full (the new datagram with `dropNewest`, the oldest
 *   with `dropOldest`).
 * - `overflow`: a new peer, and the table was full with `overflow: "refuse"`.
 * - `refused`: it was waiting in the mailbox of a peer the accept hook refused.
 * - `socketBuffer`: the socket's own receive queue was full (the demultiplexer fell behind).
 * - `closed`: it arrived for a client conversation that had ended.
 * - `draining`: a new peer while the application was shutting down (no new conversations then).
 *
 * @since 0.1.0
 */
export type DropReason = "mailboxFull" | "overflow" | "refused" | "socketBuffer" | "closed" | "draining"

const endReasons: ReadonlyArray<EndReason> = [
  "completed",
  "failed",
  "interrupted",
  "idle",
  "evicted",
  "refused",
  "shutdown"
]
const dropReasons: ReadonlyArray<DropReason> = [
  "mailboxFull",
  "overflow",
  "refused",
  "socketBuffer",
  "closed",
  "draining"
]

/**
 * The counters of one socket. Plain numbers: reading them is free, and so is bumping them.
 *
 * @since 0.1.0
 */
export class Stats {
  live = 0
  started = 0
  datagramsIn = 0
  bytesIn = 0
  datagramsOut = 0
  bytesOut = 0
  readonly ended: Record<EndReason, number> = {
    completed: 0,
    failed: 0,
    interrupted: 0,
    idle: 0,
    evicted: 0,
    refused: 0,
    shutdown: 0
  }
  readonly dropped: Record<DropReason, number> = {
    mailboxFull: 0,
    overflow: 0,
    refused: 0,
    socketBuffer: 0,
    closed: 0,
    draining: 0
  }
}

/**
 * Live conversations.
 *
 * @since 0.1.0
 */
export const conversationsLive = Metric.gauge("udp_conversations_live", { description: "live UDP conversations" })

/**
 * Conversations started.
 *
 * @since 0.1.0
 */
export const conversationsStarted = Metric.counter("udp_conversations_started_total", {
  description: "UDP conversations started",
  incremental: true
})

/**
 * Conversations ended, by `reason`.
 *
 * @since 0.1.0
 */
export const conversationsEnded = Metric.counter("udp_conversations_ended_total", {
  description: "UDP conversations ended, by reason",
  incremental: true
})

/**
 * Datagrams received.
 *
 * @since 0.1.0
 */
export const datagramsIn = Metric.counter("udp_datagrams_in_total", {
  description: "UDP datagrams received",
  incremental: true
})

/**
 * Payload bytes received.
 *
 * @since 0.1.0
 */
export const bytesIn = Metric.counter("udp_bytes_in_total", {
  description: "UDP payload bytes received",
  incremental: true
})

/**
 * Datagrams sent.
 *
 * @since 0.1.0
 */
export const datagramsOut = Metric.counter("udp_datagrams_out_total", {
  description: "UDP datagrams sent",
  incremental: true
})

/**
 * Payload bytes sent.
 *
 * @since 0.1.0
 */
export const bytesOut = Metric.counter("udp_bytes_out_total", {
  description: "UDP payload bytes sent",
  incremental: true
})

/**
 * Datagrams dropped, by `reason`.
 *
 * @since 0.1.0
 */
export const datagramsDropped = Metric.counter("udp_datagrams_dropped_total", {
  description: "UDP datagrams dropped, by reason",
  incremental: true
})

const noop = (): void => {}

const counter = (
  metric: Metric.Counter<number>,
  attributes: Record<string, string>,
  context: Context.Context<never>,
  read: () => number
): Metric.Registration =>
  Metric.registerUnsafe(Metric.withAttributes(metric, attributes), context, {
    get: () => ({ count: read(), incremental: true }),
    update: noop,
    modify: noop
  })

/**
 * Register a socket's counters as metric series in the registry of `context`; the result removes them.
 *
 * @since 0.1.0
 */
export const register = (stats: Stats, socket: string, context: Context.Context<never>): (() => void) => {
  const base = { socket }
  const registrations: Array<Metric.Registration> = [
    Metric.registerUnsafe(Metric.withAttributes(conversationsLive, base), context, {
      get: () => ({ value: stats.live }),
      update: noop,
      modify: noop
    }),
    counter(conversationsStarted, base, context, () => stats.started),
    counter(datagramsIn, base, context, () => stats.datagramsIn),
    counter(bytesIn, base, context, () => stats.bytesIn),
    counter(datagramsOut, base, context, () => stats.datagramsOut),
    counter(bytesOut, base, context, () => stats.bytesOut)
  ]
  for (const reason of endReasons) {
    registrations.push(counter(conversationsEnded, { socket, reason }, context, () => stats.ended[reason]))
  }
  for (const reason of dropReasons) {
    registrations.push(counter(datagramsDropped, { socket, reason }, context, () => stats.dropped[reason]))
  }
  return () => {
    for (const registration of registrations) registration.remove()
  }
}
