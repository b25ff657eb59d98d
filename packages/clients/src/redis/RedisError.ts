/**
 * The typed failures of the Redis client.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type { RespProtocolError } from "./Resp.js"

/**
 * The server answered the command with an error reply (`-ERR ...`, `-WRONGTYPE ...`, `-NOSCRIPT ...`).
 * The connection is fine; only this command failed.
 *
 * @since 0.1.0
 */
export class RedisReplyError extends Data.TaggedError("RedisReplyError")<{
  /** The command's name, upper case. */
  readonly command: string
  /** The first word of the error reply: `ERR`, `WRONGTYPE`, `NOSCRIPT`, `NOAUTH`, ... */
  readonly code: string
  readonly reply: string
}> {
  override get message(): string {
    return `${this.command}: ${this.code} ${this.reply}`
  }
}

/**
 * What went wrong with the connection.
 *
 * - `ConnectFailed`: could not connect (refused, timed out, TLS or handshake failure).
 * - `ConnectionLost`: the connection died while the command was in flight: it may or may not have been
 *   executed, and it is not sent again.
 * - `QueueFull`: the client is disconnected and its queue of waiting commands is full.
 * - `Closed`: the client's scope was closed.
 *
 * @since 0.1.0
 */
export type ConnectionErrorReason = "ConnectFailed" | "ConnectionLost" | "QueueFull" | "Closed"

/**
 * The command could not be completed because of the connection.
 *
 * @since 0.1.0
 */
export class RedisConnectionError extends Data.TaggedError("RedisConnectionError")<{
  readonly reason: ConnectionErrorReason
  /** `host:port` of the server. */
  readonly address: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `Redis ${this.address}: ${this.reason}${this.cause === undefined ? "" : ` (${String(this.cause)})`}`
  }
}

/**
 * No reply in time (`commandTimeout`), or no connection in time (`connectTimeout`).
 *
 * @since 0.1.0
 */
export class RedisTimeoutError extends Data.TaggedError("RedisTimeoutError")<{
  readonly command: string
  readonly timeout: Duration.Duration
}> {
  override get message(): string {
    return `${this.command}: no reply within ${this.timeout}`
  }
}

/**
 * The server sent bytes that are not RESP (or exceeded a parser limit). The connection is dropped and
 * every command in flight on it fails with this error.
 *
 * @since 0.1.0
 */
export class RedisProtocolError extends Data.TaggedError("RedisProtocolError")<{
  readonly address: string
  readonly cause: RespProtocolError
}> {
  override get message(): string {
    return `Redis ${this.address}: ${this.cause.message}`
  }
}

/**
 * The reply has a shape the typed helper did not expect (a bug in the helper, or an unusual server).
 *
 * @since 0.1.0
 */
export class RedisUnexpectedReply extends Data.TaggedError("RedisUnexpectedReply")<{
  readonly command: string
  readonly expected: string
  readonly reply: unknown
}> {
  override get message(): string {
    return `${this.command}: expected ${this.expected}, got ${String(this.reply)}`
  }
}

/**
 * Any failure of a Redis command.
 *
 * @since 0.1.0
 */
export type RedisError =
  | RedisReplyError
  | RedisConnectionError
  | RedisTimeoutError
  | RedisProtocolError
  | RedisUnexpectedReply
