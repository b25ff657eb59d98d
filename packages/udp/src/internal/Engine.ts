/**
 * The machinery behind a UDP socket: the demultiplexing loop, the conversation lifecycle (start, accept,
 * end), the limits and the idle sweeper.
 *
 * Hot path, per datagram: the peer's port and host as the native socket filled them, one Map lookup by port
 * (and a host comparison), a few pointer writes to keep the least-recently-active order, one quiet mailbox
 * push. No fiber is forked and no Effect is allocated, except for a new peer. Per batch: each conversation
 * that received something is woken once, and the loop yields once to the event loop so that the next pull
 * takes everything that arrived meanwhile.
 *
 * @internal
 */
import { Conversation, Mailbox } from "@diesel/core"
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as NetAddress from "effect/net/NetAddress"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import * as Metrics from "../Metrics.js"
import * as UDPClientConnection from "../UDPClientConnection.js"
import * as UDPError from "../UDPError.js"
import { hasNative, senderOf, Table } from "./Demux.js"

type Conn = UDPClientConnection.UDPClientConnection

/** @internal */
export interface Settings<R> {
  readonly mode: "server" | "client"
  readonly handler: Effect.Effect<unknown, unknown, R>
  readonly accept: ((peer: NetAddress.InetAddress) => Effect.Effect<boolean, unknown, R>) | undefined
  readonly maxConversations: number
  readonly overflow: "refuse" | "evictOldestIdle"
  /** `Infinity` disables the idle timeout. */
  readonly idleTimeoutMillis: number
  readonly mailboxCapacity: number
  readonly mailboxPolicy: Mailbox.OverflowPolicy
}

/** @internal */
export class Engine<R> implements UDPClientConnection.Owner {
  readonly table = new Table()
  readonly stats = new Metrics.Stats()
  /** Set when the socket starts closing: interrupted conversations then end with `shutdown`. */
  closing = false
  /** Client mode: the one conversation. */
  client: Conn | undefined = undefined
  /** Client mode: called once the conversation with the server has ended. */
  onClientEnd: ((reason: Metrics.EndReason) => void) | undefined = undefined
  private wakeSweeper: (() => void) | undefined = undefined

  constructor(
    readonly settings: Settings<R>,
    readonly reader: DatagramSocket.Reader,
    readonly writer: DatagramSocket.Writer,
    readonly clock: Clock.Clock,
    readonly connected: boolean
  ) {}

  get localAddress(): NetAddress.InetAddress {
    return this.reader.address
  }

  write(datagram: DatagramSocket.OutgoingDatagram): Effect.Effect<void, DatagramSocket.DatagramSocketError> {
    return this.writer.write(datagram)
  }

  forget(connection: Conn): void {
    if (this.table.remove(connection)) this.stats.live--
  }

  /** Start a conversation with `remote`, with `first` (if any) already in its mailbox. */
  start(
    host: string,
    port: number,
    remote: NetAddress.InetAddress | undefined,
    first: DatagramSocket.Datagram | undefined,
    now: number
  ): Effect.Effect<Conn, never, R> {
    const settings = this.settings
    const native = first !== undefined && hasNative(first)
    const connection = new UDPClientConnection.UDPClientConnection(
      this,
      host,
      port,
      // a native host with an IPv6 zone needs the socket's interface table: parse it now, from the datagram
      native && !host.includes("%") ? undefined : (remote ?? first?.address),
      native,
      Mailbox.make({ capacity: settings.mailboxCapacity, policy: settings.mailboxPolicy }),
      now
    )
    this.table.add(connection)
    this.stats.live++
    this.stats.started++
    if (first !== undefined) {
      connection.received++
      connection.mailbox.offerUnsafe(first)
    }
    const wake = this.wakeSweeper
    if (wake !== undefined) wake()
    return Effect.map(Effect.forkChild(this.conversation(connection), { startImmediately: true }), (fiber) => {
      // (runs at once if the conversation already ended)
      fiber.addObserver((exit) => this.ended(connection, exit))
      connection.fiber = fiber
      return connection
    })
  }

  /** End `connection` from outside (idle, evicted): forget it now, interrupt its fiber. */
  end(connection: Conn, reason: Metrics.EndReason): void {
    if (connection.endReason === undefined) connection.endReason = reason
    this.forget(connection)
    connection.fiber?.interruptUnsafe()
  }

  private conversation(connection: Conn): Effect.Effect<Conversation.End | undefined, never, R> {
    const { accept, handler } = this.settings
    const peer = connection.peer
    const run = Conversation.run(connection, handler, { label: `udp ${peer}` })
    const guarded =
      accept === undefined
        ? run
        : Effect.flatMap(
            Effect.orElseSucceed(accept(connection.remoteAddress), () => false),
            (accepted): Effect.Effect<Conversation.End | undefined, never, R> =>
              accepted
                ? run
                : Effect.sync(() => {
                    connection.endReason = "refused"
                    this.stats.dropped.refused += connection.mailbox.size
                    return undefined
                  })
          )
    return guarded
  }

  private ended(connection: Conn, exit: Exit.Exit<Conversation.End | undefined>): void {
    let reason = connection.endReason
    if (reason === undefined) {
      const interrupted = this.closing ? "shutdown" : "interrupted"
      if (Exit.isSuccess(exit)) {
        const end = exit.value
        reason =
          end === undefined || end._tag === "Completed" ? "completed" : end._tag === "Failed" ? "failed" : interrupted
      } else {
        reason = Cause.hasInterruptsOnly(exit.cause) ? interrupted : "failed"
      }
      connection.endReason = reason
    }
    connection.closeUnsafe()
    this.stats.ended[reason]++
    if (this.settings.mode === "client" && this.onClientEnd !== undefined) this.onClientEnd(reason)
  }

  /** Report a socket-level error (client mode: an ICMP error on the connected socket) to the conversation. */
  onSocketError(error: DatagramSocket.DatagramSocketError): void {
    const connection = this.client
    if (connection === undefined || connection.isClosed) return
    const reason = error.reason
    const kind =
      reason._tag === "DatagramSocketReadError" || reason._tag === "DatagramSocketWriteError" ? reason.kind : "Unknown"
    connection.report(
      new UDPError.PeerUnreachableError({ connectionId: connection.id, peer: connection.peer, kind, cause: error })
    )
  }

  /** Deliver a datagram to `connection` per its mailbox policy. Returns an Effect only when it must wait. */
  private deliver(connection: Conn, datagram: DatagramSocket.Datagram): Effect.Effect<boolean> | undefined {
    connection.received++
    const mailbox = connection.mailbox
    if (mailbox.policy === "backpressure" && mailbox.size >= mailbox.capacity) return mailbox.offer(datagram)
    if (!mailbox.offerUnsafe(datagram)) this.stats.dropped.mailboxFull++
    return undefined
  }

  /** The demultiplexing loop: read batches, route each datagram to its conversation. */
  readonly serve: Effect.Effect<void, DatagramSocket.DatagramSocketError, R> = Effect.suspend(() => {
    const self = this
    const { reader, table, stats, clock } = this
    const { maxConversations, overflow } = this.settings
    const client = this.settings.mode === "client"
    return Effect.gen(function* () {
      while (true) {
        const batch = yield* reader.pull
        const now = clock.currentTimeMillisUnsafe()
        stats.dropped.socketBuffer = reader.dropped()
        for (let i = 0; i < batch.length; i++) {
          const datagram = batch[i]
          if (datagram === undefined) continue
          stats.datagramsIn++
          stats.bytesIn += datagram.payload.byteLength
          if (client) {
            const connection = self.client
            if (connection === undefined || connection.isClosed) {
              stats.dropped.closed++
              continue
            }
            table.touch(connection, now)
            const wait = self.deliver(connection, datagram)
            if (wait !== undefined) yield* wait
            continue
          }
          let host: string
          let port: number
          if (hasNative(datagram)) {
            host = datagram.host
            port = datagram.port
          } else {
            const sender = senderOf(datagram)
            host = sender.host
            port = sender.port
          }
          const connection = table.get(host, port)
          if (connection !== undefined) {
            table.touch(connection, now)
            const wait = self.deliver(connection, datagram)
            if (wait !== undefined) yield* wait
            continue
          }
          if (table.size >= maxConversations) {
            const oldest = table.head
            if (overflow === "refuse" || oldest === undefined) {
              stats.dropped.overflow++
              continue
            }
            self.end(oldest, "evicted")
          }
          yield* self.start(host, port, undefined, datagram, now)
        }
        // Let the event loop run once before the next pull: whatever the kernel delivers meanwhile is read as
        // one batch, so this loop and each conversation wake once per event-loop turn, not once per datagram.
        yield* Effect.yieldNow
      }
    })
  })

  /** Ends conversations that received nothing for the idle timeout; sleeps until the next one is due. */
  readonly sweep: Effect.Effect<void> = Effect.suspend(() => {
    const self = this
    const idle = this.settings.idleTimeoutMillis
    if (!Number.isFinite(idle)) return Effect.void
    const waitForConversation = Effect.callback<void>((resume) => {
      self.wakeSweeper = () => {
        self.wakeSweeper = undefined
        resume(Effect.void)
      }
      return Effect.sync(() => {
        self.wakeSweeper = undefined
      })
    })
    return Effect.gen(function* () {
      let ended = 0
      while (true) {
        const oldest = self.table.head
        if (oldest === undefined) {
          yield* waitForConversation
          continue
        }
        const now = self.clock.currentTimeMillisUnsafe()
        const due = oldest.lastActivity + idle
        if (due > now) {
          yield* Effect.sleep(due - now)
          continue
        }
        self.end(oldest, "idle")
        if (++ended % 1024 === 0) yield* Effect.yieldNow
      }
    })
  })
}
