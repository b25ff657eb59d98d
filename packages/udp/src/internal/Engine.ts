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
import { Conversation, Mailbox, type Network } from "@diesel/core"
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as NetAddress from "effect/net/NetAddress"
import * as Scope from "effect/Scope"
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

/**
 * Server mode with `icmp: "report"`: what a conversation's watch socket (bound to the server's address and port,
 * connected to the peer) needs.
 *
 * @internal
 */
export interface WatchSettings<R> {
  readonly network: Network.NetworkService
  /** The server socket's scope: watch sockets and conversations started from them live in it. */
  readonly scope: Scope.Scope
  /** The server's context: conversations that a watch socket's loop starts need it. */
  readonly context: Context.Context<R>
  readonly family: "ipv4" | "ipv6"
  readonly reusePort: boolean | undefined
  readonly ipv6Only: boolean | undefined
}

/** @internal */
export class Engine<R> implements UDPClientConnection.Owner {
  readonly table = new Table()
  readonly stats = new Metrics.Stats()
  /** Set when the socket starts closing: interrupted conversations then end with `shutdown`. */
  closing = false
  /** Set when the application starts draining: new peers get no conversation. */
  draining = false
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
    readonly connected: boolean,
    readonly watchSettings: WatchSettings<R> | undefined = undefined
  ) {
    this.watchPeer = watchSettings === undefined ? undefined : (connection) => this.watch(connection, watchSettings)
  }

  readonly watchPeer: ((connection: Conn) => Effect.Effect<void>) | undefined

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
    now: number,
    scope?: Scope.Scope
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
    const conversation = this.conversation(connection)
    const fork =
      scope === undefined
        ? Effect.forkChild(conversation, { startImmediately: true })
        : Effect.forkIn(conversation, scope, { startImmediately: true })
    return Effect.map(fork, (fiber) => {
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
    if (this.watchSettings === undefined) return guarded
    return Effect.ensuring(
      guarded,
      Effect.suspend(() => {
        const watch = connection.watch
        return watch === undefined ? Effect.void : Scope.close(watch.scope, Exit.void)
      })
    )
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
    if (connection !== undefined) this.reportTo(connection, error)
  }

  /** Report an error the OS returned on a socket connected to `connection`'s peer to that conversation. */
  private reportTo(connection: Conn, error: DatagramSocket.DatagramSocketError): void {
    if (connection.isClosed) return
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

  /**
   * Route a datagram from a peer to its conversation, starting one for a new peer (as a child of the calling
   * fiber, or in the socket's scope when `detached`: a watch socket's loop must not own other conversations).
   * Returns an Effect only when it must wait.
   */
  private route(
    datagram: DatagramSocket.Datagram,
    now: number,
    detached: boolean
  ): Effect.Effect<unknown, never, R> | undefined {
    const table = this.table
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
      return this.deliver(connection, datagram)
    }
    if (this.draining) {
      this.stats.dropped.draining++
      return undefined
    }
    if (table.size >= this.settings.maxConversations) {
      const oldest = table.head
      if (this.settings.overflow === "refuse" || oldest === undefined) {
        this.stats.dropped.overflow++
        return undefined
      }
      this.end(oldest, "evicted")
    }
    const scope = this.watchSettings?.scope
    return this.start(host, port, undefined, datagram, now, detached ? scope : undefined)
  }

  /**
   * Open `connection`'s watch socket if it has none: bound to this socket's address and port (SO_REUSEADDR) and
   * connected to the peer, so that Linux reports on it the ICMP errors for datagrams sent to that peer (the
   * kernel matches an ICMP error to the socket whose 4-tuple fits best: the connected one, whichever socket
   * sent the datagram). Being the better match, it also receives the peer's datagrams: its loop delivers them.
   * Completes once the socket is connected (or could not be opened: the conversation then goes unwatched).
   */
  private watch(connection: Conn, settings: WatchSettings<R>): Effect.Effect<void> {
    const existing = connection.watch
    if (existing !== undefined) return existing.ready
    const self = this
    const scope = Scope.forkUnsafe(settings.scope)
    const ready = Deferred.makeUnsafe<void>()
    connection.watch = { scope, ready: Deferred.await(ready) }
    const local = this.localAddress
    const open = Effect.gen(function* () {
      const socket = yield* settings.network.datagramSocket({
        family: settings.family,
        bind: { address: NetAddress.formatIp(local.address), port: local.port },
        connect: { address: connection.key, port: connection.port },
        reuseAddress: true,
        reusePort: settings.reusePort,
        ipv6Only: settings.ipv6Only,
        receiveBuffer: { capacity: self.settings.mailboxCapacity },
        onError: (error) => self.reportTo(connection, error)
      })
      const reader = yield* Scope.provide(socket.reader, scope)
      yield* Effect.forkIn(Effect.provideContext(self.watchLoop(reader), settings.context), scope, {
        startImmediately: true
      })
    })
    return Effect.ensuring(
      Effect.ignore(open, { log: "Debug" }),
      Effect.suspend(() => {
        Deferred.doneUnsafe(ready, Exit.void)
        // a send from a child of a conversation that ended meanwhile: nobody else closes it
        return connection.isClosed ? Scope.close(scope, Exit.void) : Effect.void
      })
    )
  }

  /** A watch socket's loop: its datagrams come from the peer (or, if they arrived before it was connected, from
   * anyone): each goes to its conversation. */
  private watchLoop(reader: DatagramSocket.Reader): Effect.Effect<void, never, R> {
    const self = this
    return Effect.ignore(
      Effect.gen(function* () {
        while (true) {
          const batch = yield* reader.pull
          const now = self.clock.currentTimeMillisUnsafe()
          for (let i = 0; i < batch.length; i++) {
            const datagram = batch[i]
            if (datagram === undefined) continue
            self.stats.datagramsIn++
            self.stats.bytesIn += datagram.payload.byteLength
            const wait = self.route(datagram, now, true)
            if (wait !== undefined) yield* wait
          }
          yield* Effect.yieldNow
        }
      })
    )
  }

  /** The demultiplexing loop: read batches, route each datagram to its conversation. */
  readonly serve: Effect.Effect<void, DatagramSocket.DatagramSocketError, R> = Effect.suspend(() => {
    const self = this
    const { reader, table, stats, clock } = this
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
          const wait = self.route(datagram, now, false)
          if (wait !== undefined) yield* wait
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
