/**
 * Errors of `@diesel/udp`.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The socket could not be opened: the address is in use or not available, permission was denied, or the
 * host name of a client could not be resolved.
 *
 * @since 0.1.0
 */
export class BindError extends Schema.TaggedError<BindError>()("BindError", {
  /** `host:port` that was asked for. */
  address: Schema.String,
  kind: Schema.Literals(["AddressInUse", "AddressNotAvailable", "PermissionDenied", "ResolveFailed", "Unknown"]),
  cause: Schema.optional(Schema.Unknown)
}) {
  override get message(): string {
    return `cannot open UDP socket on ${this.address}: ${this.kind}`
  }
}

/**
 * The operating system reported that a datagram this conversation sent could not be delivered (an ICMP
 * port or host unreachable, reported on a socket connected to the peer: a client socket, or a server
 * conversation's watch socket with `icmp: "report"`). Returned once by the next
 * `UDPConnection.datagram` of the conversation that sent it.
 *
 * @since 0.1.0
 */
export class PeerUnreachableError extends Schema.TaggedError<PeerUnreachableError>()("PeerUnreachableError", {
  connectionId: Schema.Number,
  peer: Schema.String,
  kind: Schema.Literals(["ConnectionRefused", "Unreachable", "MessageTooLarge", "PermissionDenied", "Unknown"]),
  cause: Schema.optional(Schema.Unknown)
}) {
  override get message(): string {
    return `conversation ${this.connectionId}: ${this.peer} unreachable (${this.kind})`
  }
}

/**
 * A UDP operation was used outside a UDP conversation.
 *
 * @since 0.1.0
 */
export class NotUDPError extends Schema.TaggedError<NotUDPError>()("NotUDPError", {
  operation: Schema.String,
  transport: Schema.String
}) {
  override get message(): string {
    return `${this.operation} needs a UDP conversation, the current connection is ${this.transport}`
  }
}

/**
 * A client conversation ended before its handler produced a result (idle timeout, or the socket closed).
 *
 * @since 0.1.0
 */
export class ConversationEndedError extends Schema.TaggedError<ConversationEndedError>()("ConversationEndedError", {
  reason: Schema.String
}) {
  override get message(): string {
    return `the conversation with the server ended (${this.reason}) before the handler returned`
  }
}
