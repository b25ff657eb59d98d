/**
 * The current connection: diesel's "the connection of the running loop".
 *
 * A conversation (one TCP connection, one UDP peer, one client call) runs with its `Connection` in the
 * `Current` reference. `send`, `close` and the receive operations of `Receive` act on it, so protocol code
 * reads top to bottom with no connection argument; fibers forked from a conversation copy their parent's
 * context and so reach the same connection. A client call scope (`withConnection`) overrides it for the
 * duration of the call and restores the outer one after.
 *
 * Transports (`@diesel/tcp`, `@diesel/udp`, simulated ones) build `Connection` values; user code rarely
 * does.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as NetAddress from "effect/net/NetAddress"
import * as Schema from "effect/Schema"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import type * as ByteBuffer from "./ByteBuffer.js"
import type * as Mailbox from "./Mailbox.js"

/**
 * Why an input ended: the peer closed cleanly (`"eof"`), the connection failed (`"reset"`), or it was
 * closed locally (`"closed"`).
 *
 * @since 0.1.0
 */
export class InputEnded extends Schema.TaggedError<InputEnded>()("InputEnded", {
  reason: Schema.Literals(["eof", "reset", "closed"]),
  cause: Schema.optional(Schema.Unknown)
}) {}

/**
 * The receive side of a stream connection: a buffer, and `fill`, which waits for more bytes and appends
 * them (or fails with `InputEnded`). `fill` must be safe to interrupt: bytes it has read are kept for the
 * next call, never lost.
 *
 * @since 0.1.0
 */
export interface ByteInput {
  readonly _tag: "ByteInput"
  readonly buffer: ByteBuffer.ByteBuffer
  readonly fill: Effect.Effect<void, InputEnded>
}

/**
 * The receive side of a datagram conversation: its mailbox, in arrival order.
 *
 * @since 0.1.0
 */
export interface DatagramInput {
  readonly _tag: "DatagramInput"
  readonly mailbox: Mailbox.Mailbox<DatagramSocket.Datagram>
}

/**
 * @since 0.1.0
 */
export type Input = ByteInput | DatagramInput

/**
 * A send that could not be completed (the connection is closed, the peer reset it, the OS refused).
 *
 * @since 0.1.0
 */
export class SendError extends Schema.TaggedError<SendError>()("SendError", {
  connectionId: Schema.Int,
  peer: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Unknown)
}) {}

/**
 * A connection-bound operation ran in a fiber that has no current connection.
 *
 * @since 0.1.0
 */
export class NoConnectionError extends Schema.TaggedError<NoConnectionError>()("NoConnectionError", {
  operation: Schema.String
}) {
  override get message(): string {
    return `${this.operation}: this fiber has no current connection (run it inside a conversation, or with Connection.withConnection)`
  }
}

/**
 * One connection or conversation, as seen by protocol code.
 *
 * @since 0.1.0
 */
export interface Connection {
  /** Unique within the process. */
  readonly id: number
  /** `"tcp"`, `"udp"`, or a transport of your own. */
  readonly transport: string
  readonly localAddress: NetAddress.SocketAddress | undefined
  readonly remoteAddress: NetAddress.SocketAddress | undefined
  readonly input: Input
  /** Send bytes (or UTF-8 text) to the peer. Stream transports wait while the peer is slow (backpressure). */
  readonly send: (data: Uint8Array | string) => Effect.Effect<void, SendError>
  /** Close gracefully: queued output is flushed first. Idempotent. */
  readonly close: Effect.Effect<void>
}

let nextId = 0

/**
 * A fresh connection id.
 *
 * @since 0.1.0
 */
export const allocateId = (): number => ++nextId

/**
 * The connection of the running fiber, or `undefined`.
 *
 * @since 0.1.0
 */
export const Current = Context.Reference<Connection | undefined>("@diesel/core/Connection/Current", {
  defaultValue: () => undefined
})

/**
 * The current connection; fails with `NoConnectionError` when there is none.
 *
 * @since 0.1.0
 */
export const current: Effect.Effect<Connection, NoConnectionError> = Current.use((connection) =>
  connection === undefined ? Effect.fail(new NoConnectionError({ operation: "current" })) : Effect.succeed(connection)
)

/**
 * Run `f` with the current connection, failing with `NoConnectionError` (naming `operation`) if there is none.
 *
 * @since 0.1.0
 */
export const withCurrent = <A, E, R>(
  operation: string,
  f: (connection: Connection) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | NoConnectionError, R> =>
  Current.use(
    (connection): Effect.Effect<A, E | NoConnectionError, R> =>
      connection === undefined ? Effect.fail(new NoConnectionError({ operation })) : f(connection)
  )

/**
 * Send to the current connection.
 *
 * @example
 * ```ts
 * import { Connection, Receive } from "@diesel/core"
 * import { Effect } from "effect"
 *
 * const echoLine = Effect.gen(function* () {
 *   const line = yield* Receive.untilEol()
 *   yield* Connection.send(line)
 * })
 * ```
 *
 * @since 0.1.0
 */
export const send = (data: Uint8Array | string): Effect.Effect<void, SendError | NoConnectionError> =>
  withCurrent("send", (connection) => connection.send(data))

/**
 * Close the current connection gracefully.
 *
 * @since 0.1.0
 */
export const close: Effect.Effect<void, NoConnectionError> = withCurrent("close", (connection) => connection.close)

/**
 * Run `effect` with `connection` as the current connection (diesel's `@call` scope); the outer connection,
 * if any, is current again afterwards.
 *
 * @since 0.1.0
 */
export const withConnection: {
  (connection: Connection): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(effect: Effect.Effect<A, E, R>, connection: Connection): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(effect: Effect.Effect<A, E, R>, connection: Connection): Effect.Effect<A, E, R> =>
    Effect.provideService(effect, Current, connection)
)

/**
 * `host:port` (or the path) of an address, for messages and logs.
 *
 * @since 0.1.0
 */
export const formatAddress = (address: NetAddress.SocketAddress | undefined): string =>
  address === undefined ? "?" : NetAddress.formatSocketAddress(address)
