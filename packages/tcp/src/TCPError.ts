/**
 * Errors of `@diesel/tcp`, each carrying the facts a caller needs.
 *
 * Receive errors (`ConnectionClosedError`, `LimitExceededError`) and `SendError` come from
 * `@diesel/core` and are re-exported here.
 *
 * @since 0.1.0
 */
import { Connection, Receive } from "@diesel/core"
import * as Schema from "effect/Schema"

/**
 * A send failed (the connection is closed or was reset). From `@diesel/core`'s `Connection`.
 *
 * @since 0.1.0
 */
export const SendError = Connection.SendError
/** @since 0.1.0 */
export type SendError = Connection.SendError

/**
 * The peer closed (or reset) the connection before a receive was satisfied; `buffered` holds the unread
 * bytes. From `@diesel/core`'s `Receive`.
 *
 * @since 0.1.0
 */
export const ConnectionClosedError = Receive.ConnectionClosedError
/** @since 0.1.0 */
export type ConnectionClosedError = Receive.ConnectionClosedError

/**
 * A receive's maximum size was reached without satisfying it. From `@diesel/core`'s `Receive`.
 *
 * @since 0.1.0
 */
export const LimitExceededError = Receive.LimitExceededError
/** @since 0.1.0 */
export type LimitExceededError = Receive.LimitExceededError

/**
 * A client connection could not be established: refused, unreachable, DNS failure, TLS handshake or
 * certificate verification failure, or (`timedOut`) the connect timeout elapsed.
 *
 * @since 0.1.0
 */
export class ConnectError extends Schema.TaggedError<ConnectError>()("ConnectError", {
  host: Schema.String,
  port: Schema.Number,
  tls: Schema.Boolean,
  timedOut: Schema.Boolean,
  cause: Schema.optional(Schema.Unknown)
}) {
  override get message(): string {
    const what = this.tls ? "TLS connection" : "connection"
    return this.timedOut
      ? `${what} to ${this.host}:${this.port} timed out`
      : `${what} to ${this.host}:${this.port} failed: ${String(this.cause)}`
  }
}

/**
 * A service could not listen (port in use, permission denied, bad address).
 *
 * @since 0.1.0
 */
export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  host: Schema.String,
  port: Schema.Number,
  cause: Schema.optional(Schema.Unknown)
}) {
  override get message(): string {
    return `cannot listen on ${this.host}:${this.port}: ${String(this.cause)}`
  }
}

/**
 * A STARTTLS upgrade failed (handshake error, untrusted certificate, the connection closed, or a receive
 * was in progress on the connection).
 *
 * @since 0.1.0
 */
export class UpgradeError extends Schema.TaggedError<UpgradeError>()("UpgradeError", {
  connectionId: Schema.Number,
  peer: Schema.String,
  cause: Schema.optional(Schema.Unknown)
}) {
  override get message(): string {
    return `TLS upgrade of connection ${this.connectionId} to ${this.peer} failed: ${String(this.cause)}`
  }
}
