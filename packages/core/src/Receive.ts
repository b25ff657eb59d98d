/**
 * Receive operations on the current connection: diesel's `receive`, `until`, `until_eol` and `datagram`.
 *
 * An operation is a value (`ReceiveOp`) describing what would satisfy it; `run` (or the shorthands
 * `receive`, `until`, `untilEol`, `receiveAny`, `datagram`) waits until the connection's input satisfies
 * it. Checking and consuming happen in one synchronous step, and waiting never consumes, so an operation
 * that loses a race (`Event.first`, `Effect.timeout`) leaves every byte and datagram where it was.
 *
 * Every stream operation has a maximum size: a peer cannot make a conversation buffer without bound.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import * as Connection from "./Connection.js"
import type * as Mailbox from "./Mailbox.js"

/**
 * The default maximum size of a stream operation: 64 KiB.
 *
 * @since 0.1.0
 */
export const DEFAULT_MAX_BYTES = 64 * 1024

/**
 * The peer closed (or the connection failed) before the operation was satisfied. `buffered` holds the
 * bytes that had arrived and were not consumed.
 *
 * @since 0.1.0
 */
export class ConnectionClosedError extends Schema.TaggedError<ConnectionClosedError>()("ConnectionClosedError", {
  connectionId: Schema.Int,
  peer: Schema.String,
  operation: Schema.String,
  reason: Schema.Literals(["eof", "reset", "closed"]),
  buffered: Schema.Uint8Array,
  cause: Schema.optional(Schema.Unknown)
}) {
  override get message(): string {
    return `${this.operation}: connection ${this.connectionId} to ${this.peer} ${this.reason === "eof" ? "closed by peer" : this.reason === "reset" ? "reset" : "closed"} with ${this.buffered.byteLength} unread byte(s)`
  }
}

/**
 * More bytes arrived than the operation's maximum allows without satisfying it (a line longer than the
 * limit, for example). Nothing was consumed.
 *
 * @since 0.1.0
 */
export class LimitExceededError extends Schema.TaggedError<LimitExceededError>()("LimitExceededError", {
  connectionId: Schema.Int,
  peer: Schema.String,
  operation: Schema.String,
  limit: Schema.Int,
  buffered: Schema.Int
}) {
  override get message(): string {
    return `${this.operation}: ${this.buffered} bytes buffered from ${this.peer} without a match (limit ${this.limit})`
  }
}

/**
 * The operation does not apply to this kind of connection (`until` on a UDP conversation, `datagram` on
 * a TCP connection).
 *
 * @since 0.1.0
 */
export class UnsupportedReceiveError extends Schema.TaggedError<UnsupportedReceiveError>()("UnsupportedReceiveError", {
  operation: Schema.String,
  transport: Schema.String
}) {
  override get message(): string {
    return `${this.operation} is not available on a ${this.transport} connection`
  }
}

/**
 * Errors of a receive operation, apart from the operation's own.
 *
 * @since 0.1.0
 */
export type ReceiveError = ConnectionClosedError | Connection.NoConnectionError

/**
 * A receive operation: `poll` consumes and returns a result when the input satisfies it, or returns
 * `undefined` (consuming nothing) when more input is needed.
 *
 * @since 0.1.0
 */
export interface ReceiveOp<A, E = never> {
  readonly operation: string
  readonly poll: (connection: Connection.Connection) => Exit.Exit<A, E> | undefined
}

const unsupported = (operation: string, connection: Connection.Connection) =>
  Exit.fail(new UnsupportedReceiveError({ operation, transport: connection.transport }))

const checkMax = (operation: string, maxBytes: number): number => {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1)
    throw new RangeError(`${operation}: maxBytes must be a positive integer`)
  return maxBytes
}

/**
 * Exactly `n` bytes. `n` is bounded like every stream operation: when it exceeds `maxBytes` (default
 * 64 KiB) the operation fails at once with `LimitExceededError`, before a byte is buffered for it, so a
 * peer-declared length cannot make the conversation buffer without bound. Raise `maxBytes` per call for
 * protocols with larger frames.
 *
 * @example
 * ```ts
 * import { Receive } from "@diesel/core"
 * import { Effect } from "effect"
 *
 * // a length-prefixed frame: 4-byte big-endian length, then the body, at most 1 MiB
 * const frame = Effect.gen(function* () {
 *   const header = yield* Receive.receive(4)
 *   const length = new DataView(header.buffer, header.byteOffset, 4).getUint32(0)
 *   return yield* Receive.receive(length, { maxBytes: 1024 * 1024 })
 * })
 * ```
 *
 * @since 0.1.0
 */
export const exactly = (
  n: number,
  options?: { readonly maxBytes?: number | undefined }
): ReceiveOp<Uint8Array, LimitExceededError | UnsupportedReceiveError> => {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`receive: byte count must be a non-negative integer, got ${n}`)
  const maxBytes = checkMax("receive", options?.maxBytes ?? DEFAULT_MAX_BYTES)
  return {
    operation: "receive",
    poll: (connection) => {
      const input = connection.input
      if (input._tag !== "ByteInput") return unsupported("receive", connection)
      if (n > maxBytes) {
        return Exit.fail(
          new LimitExceededError({
            connectionId: connection.id,
            peer: Connection.formatAddress(connection.remoteAddress),
            operation: "receive",
            limit: maxBytes,
            buffered: input.buffer.length
          })
        )
      }
      const bytes = input.buffer.takeExactly(n)
      return bytes === undefined ? undefined : Exit.succeed(bytes)
    }
  }
}

const encoder = new TextEncoder()

/**
 * The bytes up to and including `sentinel`; fails with `LimitExceededError` when `maxBytes` are buffered
 * without one (default 64 KiB).
 *
 * @since 0.1.0
 */
export const untilOp = (
  sentinel: Uint8Array | string,
  options?: { readonly maxBytes?: number | undefined }
): ReceiveOp<Uint8Array, LimitExceededError | UnsupportedReceiveError> => {
  const needle = typeof sentinel === "string" ? encoder.encode(sentinel) : sentinel
  if (needle.byteLength === 0) throw new RangeError("until: the sentinel must not be empty")
  const maxBytes = checkMax("until", options?.maxBytes ?? DEFAULT_MAX_BYTES)
  return {
    operation: "until",
    poll: (connection) => {
      const input = connection.input
      if (input._tag !== "ByteInput") return unsupported("until", connection)
      const buffer = input.buffer
      const index = buffer.indexOf(needle)
      if (index >= 0 && index + needle.byteLength <= maxBytes) {
        return Exit.succeed(buffer.takeExactly(index + needle.byteLength) ?? new Uint8Array(0))
      }
      if (index >= 0 || buffer.length >= maxBytes) {
        return Exit.fail(
          new LimitExceededError({
            connectionId: connection.id,
            peer: Connection.formatAddress(connection.remoteAddress),
            operation: "until",
            limit: maxBytes,
            buffered: buffer.length
          })
        )
      }
      return undefined
    }
  }
}

const CRLF = encoder.encode("\r\n")

/**
 * A line ending in CRLF, CRLF included.
 *
 * @since 0.1.0
 */
export const untilEolOp = (options?: {
  readonly maxBytes?: number | undefined
}): ReceiveOp<Uint8Array, LimitExceededError | UnsupportedReceiveError> => untilOp(CRLF, options)

/**
 * Whatever is buffered (at most `maxBytes`, default 64 KiB); waits only when nothing is.
 *
 * @since 0.1.0
 */
export const anyOp = (options?: {
  readonly maxBytes?: number | undefined
}): ReceiveOp<Uint8Array, UnsupportedReceiveError> => {
  const maxBytes = checkMax("receiveAny", options?.maxBytes ?? DEFAULT_MAX_BYTES)
  return {
    operation: "receiveAny",
    poll: (connection) => {
      const input = connection.input
      if (input._tag !== "ByteInput") return unsupported("receiveAny", connection)
      const bytes = input.buffer.takeAny(maxBytes)
      return bytes === undefined ? undefined : Exit.succeed(bytes)
    }
  }
}

/**
 * The next datagram of a UDP conversation, in arrival order.
 *
 * @since 0.1.0
 */
export const datagramOp: ReceiveOp<DatagramSocket.Datagram, UnsupportedReceiveError> = {
  operation: "datagram",
  poll: (connection) => {
    const input = connection.input
    if (input._tag !== "DatagramInput") return unsupported("datagram", connection)
    const datagram = input.mailbox.poll()
    return datagram === undefined ? undefined : Exit.succeed(datagram)
  }
}

/** Wait for more input on `input` (consuming nothing): its own end signal is the failure. */
const waitForInput = (input: Connection.Input): Effect.Effect<void, Connection.InputEnded | Mailbox.MailboxClosed> =>
  input._tag === "ByteInput" ? input.fill : input.mailbox.awaitItem

const closedError = (
  connection: Connection.Connection,
  operation: string,
  ended: Connection.InputEnded | Mailbox.MailboxClosed
): ConnectionClosedError => {
  const input = connection.input
  return new ConnectionClosedError({
    connectionId: connection.id,
    peer: Connection.formatAddress(connection.remoteAddress),
    operation,
    reason: ended._tag === "InputEnded" ? ended.reason : "closed",
    buffered: input._tag === "ByteInput" ? input.buffer.takeAll() : new Uint8Array(0),
    cause: ended._tag === "InputEnded" ? ended.cause : undefined
  })
}

/**
 * Wait until `connection` has more input than when `op` last polled. Consumes nothing and is safe to
 * interrupt.
 *
 * @since 0.1.0
 */
export const awaitInput = (
  connection: Connection.Connection,
  operation: string
): Effect.Effect<void, ConnectionClosedError> =>
  Effect.mapError(waitForInput(connection.input), (ended) => closedError(connection, operation, ended))

// Poll now (call it only while the fiber runs: inside `suspend`, or a continuation); when the input does
// not satisfy `op`, one continuation frame per wait (not a flatMap over a mapError): an idle conversation
// is blocked here.
const pollOrWait = <A, E>(
  connection: Connection.Connection,
  op: ReceiveOp<A, E>
): Effect.Effect<A, E | ConnectionClosedError> => {
  const result = op.poll(connection)
  if (result !== undefined) return result
  return Effect.matchCauseEffect(waitForInput(connection.input), {
    onSuccess: (): Effect.Effect<A, E | ConnectionClosedError> => pollOrWait(connection, op),
    onFailure: (cause: Cause.Cause<Connection.InputEnded | Mailbox.MailboxClosed>) => {
      const found = Cause.findError(cause)
      return Result.isFailure(found)
        ? Effect.failCause(found.failure)
        : Effect.fail(closedError(connection, op.operation, found.success))
    }
  })
}

const runOn = <A, E>(
  connection: Connection.Connection,
  op: ReceiveOp<A, E>
): Effect.Effect<A, E | ConnectionClosedError> => Effect.suspend(() => pollOrWait(connection, op))

/**
 * Run a receive operation on the current connection.
 *
 * @since 0.1.0
 */
export const run = <A, E>(op: ReceiveOp<A, E>): Effect.Effect<A, E | ReceiveError> =>
  Connection.withCurrent(op.operation, (connection) => pollOrWait(connection, op))

/**
 * Run a receive operation on a given connection.
 *
 * @since 0.1.0
 */
export const runWith = runOn

/**
 * Receive exactly `n` bytes from the current connection; `n` above `maxBytes` (default 64 KiB) fails with
 * `LimitExceededError` before anything is buffered (see `exactly`).
 *
 * @since 0.1.0
 */
export const receive = (
  n: number,
  options?: { readonly maxBytes?: number | undefined }
): Effect.Effect<Uint8Array, ReceiveError | LimitExceededError | UnsupportedReceiveError> => run(exactly(n, options))

/**
 * Receive up to and including `sentinel` from the current connection.
 *
 * @example
 * ```ts
 * import { Receive } from "@diesel/core"
 * const headers = Receive.until("\r\n\r\n", { maxBytes: 16 * 1024 })
 * ```
 *
 * @since 0.1.0
 */
export const until = (
  sentinel: Uint8Array | string,
  options?: { readonly maxBytes?: number | undefined }
): Effect.Effect<Uint8Array, ReceiveError | LimitExceededError | UnsupportedReceiveError> =>
  run(untilOp(sentinel, options))

/**
 * Receive a CRLF-terminated line (CRLF included) from the current connection.
 *
 * @since 0.1.0
 */
export const untilEol = (options?: {
  readonly maxBytes?: number | undefined
}): Effect.Effect<Uint8Array, ReceiveError | LimitExceededError | UnsupportedReceiveError> => run(untilEolOp(options))

/**
 * Receive whatever bytes are available (waiting only if none are) from the current connection.
 *
 * @since 0.1.0
 */
export const receiveAny = (options?: {
  readonly maxBytes?: number | undefined
}): Effect.Effect<Uint8Array, ReceiveError | UnsupportedReceiveError> => run(anyOp(options))

/**
 * Receive the next datagram of the current UDP conversation.
 *
 * @since 0.1.0
 */
export const datagram: Effect.Effect<DatagramSocket.Datagram, ReceiveError | UnsupportedReceiveError> = run(datagramOp)

const decoder = new TextDecoder()

/**
 * Decode bytes as UTF-8.
 *
 * @since 0.1.0
 */
export const text = (bytes: Uint8Array): string => decoder.decode(bytes)
