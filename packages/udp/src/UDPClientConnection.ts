/**
 * One UDP conversation: the `Connection` a conversation's handler sees, with its mailbox.
 *
 * The socket creates one per peer (server mode) or one for the server (client mode); the handler reaches it
 * as the current connection (`Connection.Current`), so `Connection.send`, `Receive.datagram`,
 * `UDPConnection.datagram` and `UDPConnection.peer` act on it. Sends go straight to the shared socket,
 * addressed to the peer.
 *
 * @since 0.1.0
 */
import { Connection, type Mailbox } from "@diesel/core"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as NetAddress from "effect/net/NetAddress"
import type * as Scope from "effect/Scope"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import type * as Metrics from "./Metrics.js"
import type * as UDPError from "./UDPError.js"

/**
 * What a conversation needs from the socket that owns it.
 *
 * @since 0.1.0
 */
export interface Owner {
  readonly localAddress: NetAddress.InetAddress
  /** Client mode: the socket is connected, datagrams are sent without an address. */
  readonly connected: boolean
  readonly stats: Metrics.Stats
  /** Send a datagram on the shared socket; completes when the OS has taken it. */
  readonly write: (datagram: DatagramSocket.OutgoingDatagram) => Effect.Effect<void, DatagramSocket.DatagramSocketError>
  /** The conversation closed: forget it (a new datagram from the peer starts a new conversation). */
  readonly forget: (connection: UDPClientConnection) => void
  /**
   * Server mode with `icmp: "report"`: make sure the conversation's peer is watched for ICMP errors before it
   * sends (the first send waits until the watch socket is connected).
   */
  readonly watchPeer: ((connection: UDPClientConnection) => Effect.Effect<void>) | undefined
}

/**
 * A conversation's watch socket (server mode with `icmp: "report"`): closed with `scope`; `ready` completes once
 * it is connected.
 *
 * @since 0.1.0
 */
export interface Watch {
  readonly scope: Scope.Closeable
  readonly ready: Effect.Effect<void>
}

/**
 * The host and port as the native socket reported them: sends reuse them without formatting an address.
 *
 * @since 0.1.0
 */
export interface NativeAddress {
  readonly host: string
  readonly port: number
}

const encoder = new TextEncoder()

/**
 * A UDP conversation with one peer.
 *
 * @since 0.1.0
 */
export class UDPClientConnection implements Connection.Connection {
  readonly id: number = Connection.allocateId()
  /** Clock time (ms) of the last datagram received from the peer. */
  lastActivity: number
  /** Datagrams received from the peer (including any dropped because the mailbox was full). */
  received = 0
  /** Datagrams sent to the peer. */
  sent = 0
  /** Set by the socket before it ends the conversation (idle, evicted, shutdown, refused). */
  endReason: Metrics.EndReason | undefined = undefined
  /** An error the OS reported for this conversation, not yet returned by `UDPConnection.datagram`. */
  pendingError: UDPError.PeerUnreachableError | undefined = undefined
  /** Its watch socket, once it has sent (server mode with `icmp: "report"`). */
  watch: Watch | undefined = undefined
  /** The conversation's fiber, once started. */
  fiber: Fiber.Fiber<unknown, unknown> | undefined = undefined
  /** Least-recently-active list, maintained by the socket's table. */
  prev: UDPClientConnection | undefined = undefined
  next: UDPClientConnection | undefined = undefined
  /** The next conversation in the table whose peer has the same port. */
  samePort: UDPClientConnection | undefined = undefined

  constructor(
    readonly owner: Owner,
    /** The table key: the peer's host as the native socket spells it (with `port`). */
    readonly key: string,
    /** The peer's port. */
    readonly port: number,
    /** The peer's address, if already parsed; otherwise it is parsed from `key` and `port` when asked for. */
    private address: NetAddress.InetAddress | undefined,
    /** Whether `key` and `port` are the peer as the native socket spells it (effect's Node socket). */
    readonly nativeAddressing: boolean,
    readonly mailbox: Mailbox.Mailbox<DatagramSocket.Datagram>,
    /** Clock time (ms) the conversation started. */
    readonly startedAt: number
  ) {
    this.lastActivity = startedAt
  }

  /** The conversation is its own input (one object less per conversation). */
  get input(): Connection.DatagramInput {
    return this
  }

  get _tag(): "DatagramInput" {
    return "DatagramInput"
  }

  /** Always `"udp"`. */
  get transport(): string {
    return "udp"
  }

  get localAddress(): NetAddress.InetAddress {
    return this.owner.localAddress
  }

  /** The peer's address (parsed on first use: most conversations never ask). */
  get remoteAddress(): NetAddress.InetAddress {
    if (this.address === undefined) this.address = NetAddress.inetAddressFromNativeUnsafe(this.key, this.port)
    return this.address
  }

  /** The peer, formatted (`127.0.0.1:5353`, `[::1]:5353`). */
  get peer(): string {
    if (!this.nativeAddressing) return NetAddress.formatInet(this.remoteAddress)
    return this.key.includes(":") ? `[${this.key}]:${this.port}` : `${this.key}:${this.port}`
  }

  get isClosed(): boolean {
    // the mailbox closes exactly when the conversation does
    return this.mailbox.isClosed
  }

  /**
   * Send one datagram to the peer, straight to the shared socket; completes when the OS has taken it. An error
   * the OS returns for it (`EMSGSIZE`, `EHOSTUNREACH`, ...) fails this send with `SendError`, and nothing else.
   */
  send(data: Uint8Array | string): Effect.Effect<void, Connection.SendError> {
    if (this.mailbox.isClosed) {
      return Effect.fail(
        new Connection.SendError({ connectionId: this.id, peer: this.peer, message: "conversation closed" })
      )
    }
    const payload = typeof data === "string" ? encoder.encode(data) : data
    const owner = this.owner
    // The peer as effect's Node socket spelled it (`host`, `port`): that socket sends to it as is, with no
    // address object to format. Other sockets get the address.
    const datagram: DatagramSocket.OutgoingDatagram = owner.connected
      ? { payload }
      : this.nativeAddressing
        ? ({ payload, host: this.key, port: this.port } as DatagramSocket.OutgoingDatagram & NativeAddress)
        : { payload, address: this.remoteAddress }
    this.sent++
    owner.stats.datagramsOut++
    owner.stats.bytesOut += payload.byteLength
    const write = Effect.mapError(
      owner.write(datagram),
      (cause) => new Connection.SendError({ connectionId: this.id, peer: this.peer, message: cause.message, cause })
    )
    const watchPeer = owner.watchPeer
    return watchPeer === undefined ? write : Effect.andThen(watchPeer(this), write)
  }

  /** Close the conversation: its mailbox refuses new datagrams and the socket forgets it. Idempotent. */
  get close(): Effect.Effect<void> {
    return Effect.sync(() => this.closeUnsafe())
  }

  /** `close`, synchronously. */
  closeUnsafe(): void {
    if (this.mailbox.isClosed) return
    this.mailbox.close()
    this.owner.forget(this)
  }

  /** Record an error the OS reported for this conversation and wake a waiting receive. */
  report(error: UDPError.PeerUnreachableError): void {
    this.pendingError = error
    this.mailbox.notify()
  }
}
