/**
 * TCP metrics, in Effect's default metric registry: open connections, connections accepted/opened,
 * connections refused because a service was full, idle timeouts, and bytes in and out. Every series
 * carries the attributes `transport: "tcp"`, `role` (`"server"` or `"client"`) and, for a service, its
 * `service` name.
 *
 * Read them with `Metric.value(Metric.withAttributes(Metrics.bytesIn, { ... }))` or `Metric.snapshot`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Metric from "effect/Metric"

/**
 * Attributes that identify a series.
 *
 * @since 0.1.0
 */
export type Attributes = Readonly<Record<string, string>>

/**
 * Open connections (gauge).
 *
 * @since 0.1.0
 */
export const connectionsOpen = Metric.gauge("diesel_tcp_connections_open", {
  description: "TCP connections currently open"
})

/**
 * Connections opened (accepted by a service, or connected by a client).
 *
 * @since 0.1.0
 */
export const connectionsTotal = Metric.counter("diesel_tcp_connections_total", {
  description: "TCP connections opened",
  incremental: true
})

/**
 * Connections a service closed at once because it had `maxConnections` conversations.
 *
 * @since 0.1.0
 */
export const connectionsRejected = Metric.counter("diesel_tcp_connections_rejected_total", {
  description: "TCP connections refused because the service was full",
  incremental: true
})

/**
 * Connections closed by the idle timeout.
 *
 * @since 0.1.0
 */
export const idleTimeouts = Metric.counter("diesel_tcp_idle_timeouts_total", {
  description: "TCP connections closed after the idle timeout",
  incremental: true
})

/**
 * Bytes received.
 *
 * @since 0.1.0
 */
export const bytesIn = Metric.counter("diesel_tcp_bytes_in_total", {
  description: "bytes received over TCP",
  incremental: true
})

/**
 * Bytes handed to the socket.
 *
 * @since 0.1.0
 */
export const bytesOut = Metric.counter("diesel_tcp_bytes_out_total", {
  description: "bytes sent over TCP",
  incremental: true
})

/**
 * The recorders of one connection (synchronous: they run on the hot path).
 *
 * @since 0.1.0
 */
export interface ConnectionRecorder {
  readonly opened: () => void
  readonly closed: () => void
  readonly bytesIn: (n: number) => void
  readonly bytesOut: (n: number) => void
}

/**
 * The full attribute set of a series.
 *
 * @since 0.1.0
 */
export const attributes = (attrs: Attributes): Attributes => ({ transport: "tcp", ...attrs })

/**
 * Recorders for a connection with `attrs`, updating metrics in `context`'s registry.
 *
 * @since 0.1.0
 */
export const forConnection = (attrs: Attributes, context: Context.Context<never>): ConnectionRecorder => {
  // The same attribute object for every connection of a series lets the metrics reuse their series key
  // instead of recomputing it on every update (the hot path updates per read and per send).
  const all = interned(attributes(attrs))
  const withAttributes = Context.add(context, Metric.CurrentMetricAttributes, all)
  return {
    opened: () => {
      connectionsTotal.updateUnsafe(1, withAttributes)
      connectionsOpen.modifyUnsafe(1, withAttributes)
    },
    closed: () => connectionsOpen.modifyUnsafe(-1, withAttributes),
    bytesIn: (n) => bytesIn.updateUnsafe(n, withAttributes),
    bytesOut: (n) => bytesOut.updateUnsafe(n, withAttributes)
  }
}

const internedAttributes = new Map<string, Attributes>()

const interned = (attrs: Attributes): Attributes => {
  const key = JSON.stringify(Object.entries(attrs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  const found = internedAttributes.get(key)
  if (found !== undefined) return found
  internedAttributes.set(key, attrs)
  return attrs
}

/**
 * Record a connection a service refused because it was full.
 *
 * @since 0.1.0
 */
export const recordRejected = (attrs: Attributes) =>
  Metric.update(Metric.withAttributes(connectionsRejected, attributes(attrs)), 1)

/**
 * Record an idle timeout.
 *
 * @since 0.1.0
 */
export const recordIdleTimeout = (attrs: Attributes) =>
  Metric.update(Metric.withAttributes(idleTimeouts, attributes(attrs)), 1)
