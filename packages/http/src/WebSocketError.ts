/**
 * The errors of a WebSocket conversation.
 *
 * `WebSocketError` is a failure: the handshake was refused or malformed, the peer broke the protocol, sent
 * invalid UTF-8, a message over the size limit (or one that inflates past it), or stopped answering pings.
 * Each carries the close code this endpoint sends (1002, 1007, 1009, ...) and what was wrong.
 *
 * `WebSocketClosedError` is the end of the conversation from the other side: the peer's close frame (its
 * code and reason), or 1006 when the connection dropped without one.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * What went wrong.
 *
 * - `Handshake`: the opening handshake failed (a non-101 answer, a wrong accept key, an unrequested
 *   subprotocol or extension, a refused or malformed upgrade request).
 * - `Protocol`: a frame the protocol forbids (unmasked client frame, reserved bits or opcode, bad
 *   fragmentation, an oversize control frame, an invalid close code). Close code 1002.
 * - `InvalidPayload`: text (or a close reason) that is not UTF-8, or corrupt deflate data. Close code 1007.
 * - `MessageTooBig`: a frame or message over the limit, or a compressed message inflating past it. 1009.
 * - `PeerTimeout`: no answer to a ping within the dead-peer timeout.
 *
 * @since 0.1.0
 */
export const WebSocketErrorReason = Schema.Literals([
  "Handshake",
  "Protocol",
  "InvalidPayload",
  "MessageTooBig",
  "PeerTimeout"
])

/**
 * @since 0.1.0
 */
export type WebSocketErrorReason = typeof WebSocketErrorReason.Type

/**
 * A failed WebSocket (see `WebSocketErrorReason`).
 *
 * @example
 * ```ts
 * import { WebSocket } from "@diesel/http"
 * import { Effect } from "effect"
 *
 * const next = WebSocket.message.pipe(
 *   Effect.catchTag("WebSocketError", (error) =>
 *     error.reason === "MessageTooBig" ? Effect.succeed("too big") : Effect.fail(error)
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class WebSocketError extends Schema.TaggedError<WebSocketError>()("WebSocketError", {
  reason: WebSocketErrorReason,
  /** The peer's address (`host:port`). */
  peer: Schema.String,
  /** The close code sent to the peer (0 when no close frame is sent, as for a failed handshake). */
  closeCode: Schema.Int,
  detail: Schema.String,
  cause: Schema.optional(Schema.Unknown)
}) {
  override get message(): string {
    return `WebSocket ${this.reason} error with ${this.peer}: ${this.detail}${this.closeCode === 0 ? "" : ` (close ${this.closeCode})`}`
  }
}

/**
 * The peer closed the WebSocket: its close code and reason (1005 when its close frame had no code, 1006
 * when the connection ended without a close frame).
 *
 * @since 0.1.0
 * @category errors
 */
export class WebSocketClosedError extends Schema.TaggedError<WebSocketClosedError>()("WebSocketClosedError", {
  peer: Schema.String,
  closeCode: Schema.Int,
  closeReason: Schema.String
}) {
  override get message(): string {
    return `WebSocket closed by ${this.peer} with ${this.closeCode}${this.closeReason === "" ? "" : ` (${this.closeReason})`}`
  }
}
