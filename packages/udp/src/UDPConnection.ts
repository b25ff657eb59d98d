/**
 * UDP conversations: one socket, one conversation per peer.
 *
 * `UDPConnection.layer` binds a port and provides the `UDPSocket` service. Each datagram from a peer it has
 * no conversation with starts one: the handler runs as that conversation's fiber, with the peer's
 * `UDPClientConnection` as the current connection. Later datagrams from that peer go to its mailbox, in
 * arrival order, and the handler reads them with `UDPConnection.datagram` (or core's `Receive.datagram`),
 * replies with `Connection.send`, and forks loops with `ConnectedLoop` that share the conversation.
 *
 * `UDPConnection.layerClient` (or `UDPConnection.connect`) connects a socket to a server and runs one
 * conversation with it; the kernel drops datagrams from anyone else.
 *
 * Limits, each with a default: `maxConversations` (10,000) with an `overflow` policy, an `accept` hook,
 * `idleTimeout` (60 s), and a mailbox per conversation (`capacity` 1024, policy `dropNewest`).
 *
 * @example
 * ```ts
 * import { Connection } from "@diesel/core"
 * import { UDPConnection } from "@diesel/udp"
 * import { Effect, Layer } from "effect"
 *
 * // echo every datagram back to its sender, one conversation per peer
 * const echo = Effect.forever(
 *   Effect.gen(function* () {
 *     const datagram = yield* UDPConnection.datagram
 *     yield* Connection.send(datagram.payload)
 *   })
 * )
 *
 * const server = UDPConnection.layer({ port: 5300, host: "127.0.0.1", handler: echo })
 * Layer.launch(server) // runs until interrupted
 * ```
 *
 * @since 0.1.0
 */
import { Application, Connection, type Conversation, Loop, type Mailbox, Network, Receive } from "@diesel/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import type * as Scope from "effect/Scope"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import { Engine } from "./internal/Engine.js"
import * as Metrics from "./Metrics.js"
import * as UDPClientConnection from "./UDPClientConnection.js"
import * as UDPError from "./UDPError.js"

/**
 * Default maximum number of live conversations of a server socket.
 *
 * @since 0.1.0
 */
export const DEFAULT_MAX_CONVERSATIONS = 10_000

/**
 * Default idle timeout: a conversation that receives nothing for this long ends.
 *
 * @since 0.1.0
 */
export const DEFAULT_IDLE_TIMEOUT: Duration.Duration = Duration.seconds(60)

/**
 * Default mailbox capacity of a conversation, in datagrams.
 *
 * @since 0.1.0
 */
export const DEFAULT_MAILBOX_CAPACITY = 1024

/**
 * Default capacity of the socket's own receive queue (datagrams read from the kernel and not yet
 * demultiplexed).
 *
 * @since 0.1.0
 */
export const DEFAULT_RECEIVE_BUFFER = 4096

/**
 * Default SO_RCVBUF asked of the kernel, in bytes (4 MiB): the Linux default (about 208 KiB) holds about 256
 * small datagrams, less than a burst a cold server must absorb. Linux caps the request at `net.core.rmem_max`.
 *
 * @since 0.1.0
 */
export const DEFAULT_KERNEL_RECEIVE_BUFFER_SIZE = 4 * 1024 * 1024

/**
 * Options shared by server and client sockets.
 *
 * @since 0.1.0
 */
export interface CommonOptions {
  /** `ipv4` or `ipv6`; by default, the family of the address. */
  readonly family?: "ipv4" | "ipv6" | undefined
  /**
   * A conversation that receives no datagram for this long ends (reason `idle`); sending does not count as
   * activity. Default 60 s; `Duration.infinity` disables it.
   */
  readonly idleTimeout?: Duration.Input | undefined
  /**
   * Each conversation's mailbox: `capacity` datagrams (default 1024) and what happens when it is full:
   * `dropNewest` (default), `dropOldest`, or `backpressure` (the socket stops reading until there is room,
   * which holds back every conversation of the socket: the kernel buffer then absorbs, and drops).
   */
  readonly mailbox?:
    | { readonly capacity?: number | undefined; readonly policy?: Mailbox.OverflowPolicy | undefined }
    | undefined
  /** Capacity of the socket's receive queue, in datagrams (default 4096; the excess is dropped and counted). */
  readonly receiveBuffer?: number | undefined
  /** SO_RCVBUF in bytes (default 4 MiB, capped by the OS at `net.core.rmem_max`). */
  readonly kernelReceiveBufferSize?: number | undefined
  /** SO_SNDBUF in bytes. */
  readonly kernelSendBufferSize?: number | undefined
}

/**
 * Options of a server socket.
 *
 * @since 0.1.0
 */
export interface ServerOptions<R> extends CommonOptions {
  /** The port to bind; 0 picks a free one (read it from `UDPSocket.localAddress`). */
  readonly port: number
  /** The address to bind; default `0.0.0.0` (or `::` with `family: "ipv6"`). */
  readonly host?: string | undefined
  /** The conversation: runs once per peer, with the peer's conversation as the current connection. */
  readonly handler: Effect.Effect<unknown, unknown, R>
  /** At most this many live conversations (default 10,000). */
  readonly maxConversations?: number | undefined
  /**
   * A datagram from a new peer when the table is full: `refuse` drops it (default), `evictOldestIdle` ends
   * the least recently active conversation (reason `evicted`) and starts the new one.
   */
  readonly overflow?: "refuse" | "evictOldestIdle" | undefined
  /**
   * Called with each new peer before its handler runs (datagrams arriving meanwhile wait in its mailbox).
   * `false` or a failure refuses the peer: its conversation ends with reason `refused` and the datagrams it
   * sent are dropped. A later datagram from that peer asks again.
   */
  readonly accept?: ((peer: NetAddress.InetAddress) => Effect.Effect<boolean, unknown, R>) | undefined
  /** SO_REUSEPORT. */
  readonly reusePort?: boolean | undefined
  readonly ipv6Only?: boolean | undefined
  /**
   * ICMP errors for datagrams a conversation sends (port or host unreachable). `"ignore"` (default): Linux does
   * not report them on the shared, unconnected socket, so the conversation never learns. `"report"`: each
   * conversation, when it first sends, opens a watch socket bound to the server's address and port (the server
   * socket and watch sockets set SO_REUSEADDR) and connected to its peer; the OS reports the peer's ICMP errors
   * on it, and the conversation's next `UDPConnection.datagram` fails once with `PeerUnreachableError`. Cost per
   * conversation that sends: one file descriptor, about 1 KB of heap and a kernel socket; the first send waits
   * until the watch socket is connected. See the README's ICMP section.
   */
  readonly icmp?: "ignore" | "report" | undefined
}

/**
 * Options of a client socket.
 *
 * @since 0.1.0
 */
export interface ClientOptions<R> extends CommonOptions {
  /** The server: an IP literal or a host name (resolved through `Network.lookup`, off the event loop). */
  readonly host: string
  readonly port: number
  /** The conversation with the server. */
  readonly handler: Effect.Effect<unknown, unknown, R>
  /** Local address to bind (default: every interface). */
  readonly localAddress?: string | undefined
  /** Local port to bind (default: a free one). */
  readonly localPort?: number | undefined
}

/**
 * A live conversation, as listed by `UDPSocket.conversations`.
 *
 * @since 0.1.0
 */
export interface ConversationInfo {
  readonly id: number
  readonly peer: NetAddress.InetAddress
  /** Clock time (ms) it started. */
  readonly startedAt: number
  /** Clock time (ms) of the last datagram from the peer. */
  readonly lastActivity: number
  readonly received: number
  readonly sent: number
  /** Datagrams waiting in its mailbox. */
  readonly queued: number
  /** Datagrams its mailbox dropped. */
  readonly dropped: number
}

/**
 * The socket service.
 *
 * @since 0.1.0
 */
export interface UDPSocketService {
  readonly mode: "server" | "client"
  /** The bound address (with the real port when 0 was asked for). */
  readonly localAddress: NetAddress.InetAddress
  /**
   * Send a datagram from this socket to any address, outside any conversation. A client socket is connected
   * and sends only to its server.
   */
  readonly sendTo: (
    data: Uint8Array | string,
    address: NetAddress.InetAddress
  ) => Effect.Effect<void, Connection.SendError>
  /** The live conversations. */
  readonly conversations: Effect.Effect<ReadonlyArray<ConversationInfo>>
  /** The number of live conversations. */
  readonly size: Effect.Effect<number>
  /** The socket's counters (live values; also exported as Effect metrics, see `Metrics`). */
  readonly stats: Metrics.Stats
  /** Client mode: how the conversation with the server ended, once it has. Server mode: never completes. */
  readonly ended: Effect.Effect<Metrics.EndReason>
}

/**
 * The socket service of the current `UDPConnection.layer` or `layerClient`.
 *
 * @since 0.1.0
 */
export class UDPSocket extends Context.Service<UDPSocket, UDPSocketService>()("@diesel/udp/UDPSocket") {}

const bindError = (address: string, error: DatagramSocket.DatagramSocketError): UDPError.BindError => {
  const reason = error.reason
  return new UDPError.BindError({
    address,
    kind: reason._tag === "DatagramSocketOpenError" ? reason.kind : "Unknown",
    cause: error
  })
}

const positive = (name: string, value: number): number => {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new RangeError(`UDPConnection: ${name} must be >= 1, got ${value}`)
  return value
}

const idleMillis = (input: Duration.Input | undefined): number => {
  if (input === undefined) return Duration.toMillis(DEFAULT_IDLE_TIMEOUT)
  const millis = Duration.toMillis(Duration.fromInputUnsafe(input))
  if (!(millis > 0)) throw new RangeError("UDPConnection: idleTimeout must be positive")
  return millis
}

const hostPort = (host: string, port: number): string => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`)

interface Opened<R> {
  readonly engine: Engine<R>
  readonly service: UDPSocketService
}

const open = <R>(
  mode: "server" | "client",
  datagramOptions: Network.DatagramOptions,
  requested: string,
  options: CommonOptions & {
    readonly handler: Effect.Effect<unknown, unknown, R>
    readonly accept?: ((peer: NetAddress.InetAddress) => Effect.Effect<boolean, unknown, R>) | undefined
    readonly maxConversations?: number | undefined
    readonly overflow?: "refuse" | "evictOldestIdle" | undefined
  },
  server: NetAddress.InetAddress | undefined,
  watch?: { readonly reusePort: boolean | undefined; readonly ipv6Only: boolean | undefined } | undefined
): Effect.Effect<Opened<R>, UDPError.BindError, R | Scope.Scope> =>
  Effect.gen(function* () {
    const net = yield* Network.Network
    const scope = yield* Effect.scope
    let onError: (error: DatagramSocket.DatagramSocketError) => void = () => {}
    const socket = yield* net.datagramSocket({
      ...datagramOptions,
      receiveBuffer: { capacity: positive("receiveBuffer", options.receiveBuffer ?? DEFAULT_RECEIVE_BUFFER) },
      kernelReceiveBufferSize: options.kernelReceiveBufferSize ?? DEFAULT_KERNEL_RECEIVE_BUFFER_SIZE,
      kernelSendBufferSize: options.kernelSendBufferSize,
      onError: (error) => onError(error)
    })
    const reader = yield* Effect.mapError(socket.reader, (error) => bindError(requested, error))
    const writer = yield* socket.writer
    const clock = yield* Clock.Clock
    const engine = new Engine<R>(
      {
        mode,
        handler: options.handler,
        accept: options.accept,
        maxConversations: positive("maxConversations", options.maxConversations ?? DEFAULT_MAX_CONVERSATIONS),
        overflow: options.overflow ?? "refuse",
        idleTimeoutMillis: idleMillis(options.idleTimeout),
        mailboxCapacity: positive("mailbox.capacity", options.mailbox?.capacity ?? DEFAULT_MAILBOX_CAPACITY),
        mailboxPolicy: options.mailbox?.policy ?? "dropNewest"
      },
      reader,
      writer,
      clock,
      mode === "client",
      watch === undefined
        ? undefined
        : {
            network: net,
            scope,
            context: yield* Effect.context<R>(),
            family: reader.address._tag === "InetAddressV4" ? "ipv4" : "ipv6",
            reusePort: watch.reusePort,
            ipv6Only: watch.ipv6Only
          }
    )
    onError = (error) => engine.onSocketError(error)
    const name = `${mode} ${NetAddress.formatInet(reader.address)}`
    const context = yield* Effect.context<never>()
    const unregister = Metrics.register(engine.stats, name, context)
    yield* Effect.addFinalizer(() => Effect.sync(unregister))

    const ended = yield* Deferred.make<Metrics.EndReason>()
    if (mode === "client" && server !== undefined) {
      engine.onClientEnd = (reason) => Deferred.doneUnsafe(ended, Exit.succeed(reason))
      const start = Effect.map(
        engine.start(NetAddress.formatInet(server), server.port, server, undefined, clock.currentTimeMillisUnsafe()),
        (connection) => {
          if (!connection.isClosed) engine.client = connection
        }
      )
      yield* Effect.forkScoped(serveLoop(Effect.andThen(start, engine.serve), name), { startImmediately: true })
    } else {
      yield* Effect.forkScoped(serveLoop(engine.serve, name), { startImmediately: true })
      // In an Application, start no new conversation once it drains (the ones in progress carry on).
      yield* Effect.forkScoped(
        Effect.andThen(
          Application.whenDraining,
          Effect.sync(() => {
            engine.draining = true
          })
        )
      )
    }
    yield* Effect.forkScoped(engine.sweep, { startImmediately: true })
    // runs before the loop above is interrupted (finalizers run last-added first)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        engine.closing = true
      })
    )

    const sendTo = (data: Uint8Array | string, address: NetAddress.InetAddress) => {
      const peer = NetAddress.formatInet(address)
      if (engine.connected && (server === undefined || !Equal.equals(address, server))) {
        return Effect.fail(
          new Connection.SendError({
            connectionId: 0,
            peer,
            message: `a client socket sends only to its server${server === undefined ? "" : ` ${NetAddress.formatInet(server)}`}`
          })
        )
      }
      const payload = typeof data === "string" ? new TextEncoder().encode(data) : data
      engine.stats.datagramsOut++
      engine.stats.bytesOut += payload.byteLength
      return Effect.mapError(
        writer.write(engine.connected ? { payload } : { payload, address }),
        (cause) => new Connection.SendError({ connectionId: 0, peer, message: cause.message, cause })
      )
    }

    const service: UDPSocketService = {
      mode,
      localAddress: reader.address,
      sendTo,
      conversations: Effect.sync(() => {
        const out: Array<ConversationInfo> = []
        for (const connection of engine.table.values()) {
          out.push({
            id: connection.id,
            peer: connection.remoteAddress,
            startedAt: connection.startedAt,
            lastActivity: connection.lastActivity,
            received: connection.received,
            sent: connection.sent,
            queued: connection.mailbox.size,
            dropped: connection.mailbox.dropped
          })
        }
        return out
      }),
      size: Effect.sync(() => engine.table.size),
      stats: engine.stats,
      ended: mode === "client" ? Deferred.await(ended) : Effect.never
    }
    return { engine, service }
  })

const serveLoop = <R>(
  serve: Effect.Effect<void, DatagramSocket.DatagramSocketError, R>,
  name: string
): Effect.Effect<void, never, R> =>
  serve.pipe(
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause) ? Effect.interrupt : Effect.logError(`UDP ${name} stopped`, cause)
    ),
    Loop.track("service", `udp ${name}`)
  )

/**
 * Bind a server socket in the current scope and serve conversations until the scope closes. Closing the
 * scope interrupts every conversation and waits for their finalizers.
 *
 * @since 0.1.0
 */
export const make = <R>(
  options: ServerOptions<R>
): Effect.Effect<UDPSocketService, UDPError.BindError, R | Scope.Scope> =>
  Effect.suspend(() => {
    const host = options.host ?? (options.family === "ipv6" ? "::" : "0.0.0.0")
    const report = options.icmp === "report"
    return Effect.map(
      open(
        "server",
        {
          family: options.family,
          bind: { address: host, port: options.port },
          reuseAddress: report ? true : undefined,
          reusePort: options.reusePort,
          ipv6Only: options.ipv6Only
        },
        hostPort(host, options.port),
        options,
        undefined,
        report ? { reusePort: options.reusePort, ipv6Only: options.ipv6Only } : undefined
      ),
      (opened) => opened.service
    )
  })

/**
 * Connect a client socket to a server in the current scope and run the conversation with it.
 *
 * @since 0.1.0
 */
export const makeClient = <R>(
  options: ClientOptions<R>
): Effect.Effect<UDPSocketService, UDPError.BindError, R | Scope.Scope> =>
  Effect.gen(function* () {
    const net = yield* Network.Network
    const requested = hostPort(options.host, options.port)
    const addresses = yield* Effect.mapError(
      net.lookup(options.host, {
        family: options.family === "ipv6" ? "IPv6" : options.family === "ipv4" ? "IPv4" : undefined
      }),
      (cause) => new UDPError.BindError({ address: requested, kind: "ResolveFailed", cause })
    )
    const ip = addresses.find(NetAddress.isIpv4Address) ?? addresses[0]
    if (ip === undefined) {
      return yield* new UDPError.BindError({ address: requested, kind: "ResolveFailed" })
    }
    const server = NetAddress.inetAddressUnsafe(ip, options.port)
    const family = options.family ?? (NetAddress.isIpv4Address(ip) ? "ipv4" : "ipv6")
    const opened = yield* open(
      "client",
      {
        family,
        bind:
          options.localAddress === undefined && options.localPort === undefined
            ? undefined
            : { address: options.localAddress, port: options.localPort ?? 0 },
        connect: { address: NetAddress.formatIp(ip), port: options.port }
      },
      requested,
      options,
      server
    )
    return opened.service
  })

/**
 * A server socket as a Layer providing `UDPSocket`.
 *
 * @example
 * ```ts
 * import { Connection } from "@diesel/core"
 * import { UDPConnection } from "@diesel/udp"
 * import { Effect } from "effect"
 *
 * const server = UDPConnection.layer({
 *   port: 0,
 *   host: "127.0.0.1",
 *   maxConversations: 1000,
 *   overflow: "evictOldestIdle",
 *   idleTimeout: "30 seconds",
 *   mailbox: { capacity: 64, policy: "dropOldest" },
 *   handler: Effect.forever(Effect.flatMap(UDPConnection.datagram, (d) => Connection.send(d.payload)))
 * })
 * ```
 *
 * @since 0.1.0
 */
export const layer = <R>(options: ServerOptions<R>): Layer.Layer<UDPSocket, UDPError.BindError, R> =>
  Layer.effect(UDPSocket, make(options))

/**
 * A client socket as a Layer providing `UDPSocket`: it connects to the server and runs one conversation
 * with it (`UDPSocket.ended` says when and how it ended).
 *
 * @since 0.1.0
 */
export const layerClient = <R>(options: ClientOptions<R>): Layer.Layer<UDPSocket, UDPError.BindError, R> =>
  Layer.effect(UDPSocket, makeClient(options))

/**
 * Run `handler` as a conversation with a server and return its result; the socket is closed afterwards.
 * Fails with the handler's error, or with `PeerUnreachableError`-style errors the handler lets through.
 *
 * @example
 * ```ts
 * import { Connection } from "@diesel/core"
 * import { UDPConnection } from "@diesel/udp"
 * import { Effect } from "effect"
 *
 * const ask = UDPConnection.connect({ host: "localhost", port: 5300 }, Effect.gen(function* () {
 *   yield* Connection.send("ping")
 *   const reply = yield* UDPConnection.datagram
 *   return new TextDecoder().decode(reply.payload)
 * }))
 * ```
 *
 * @since 0.1.0
 */
export const connect = <A, E, R>(
  options: Omit<ClientOptions<R>, "handler">,
  handler: Effect.Effect<A, E, R>
): Effect.Effect<A, E | UDPError.BindError | UDPError.ConversationEndedError, R> =>
  Effect.scoped(
    Effect.gen(function* () {
      let outcome: Exit.Exit<A, E> | undefined
      const service = yield* makeClient({
        ...options,
        handler: Effect.tap(Effect.exit(handler), (exit) =>
          Effect.sync(() => {
            outcome = exit
          })
        )
      })
      const reason = yield* service.ended
      if (outcome !== undefined && (Exit.isSuccess(outcome) || !Cause.hasInterruptsOnly(outcome.cause))) {
        return yield* outcome
      }
      return yield* new UDPError.ConversationEndedError({ reason })
    })
  )

/**
 * The current UDP conversation.
 *
 * @since 0.1.0
 */
export const current: Effect.Effect<
  UDPClientConnection.UDPClientConnection,
  Connection.NoConnectionError | UDPError.NotUDPError
> = Connection.withCurrent("UDPConnection.current", (connection) =>
  connection instanceof UDPClientConnection.UDPClientConnection
    ? Effect.succeed(connection)
    : Effect.fail(new UDPError.NotUDPError({ operation: "UDPConnection.current", transport: connection.transport }))
)

/**
 * The peer of the current UDP conversation.
 *
 * @since 0.1.0
 */
export const peer: Effect.Effect<NetAddress.InetAddress, Connection.NoConnectionError | UDPError.NotUDPError> =
  Effect.map(current, (connection) => connection.remoteAddress)

/**
 * The receive operation behind `datagram`, for `Event.first`: the next datagram of the conversation, or
 * `PeerUnreachableError` if the OS reported one for it since the last receive.
 *
 * @since 0.1.0
 */
export const datagramOp: Receive.ReceiveOp<
  DatagramSocket.Datagram,
  UDPError.PeerUnreachableError | Receive.UnsupportedReceiveError
> = {
  operation: "datagram",
  poll: (connection) => {
    if (connection instanceof UDPClientConnection.UDPClientConnection) {
      const error = connection.pendingError
      if (error !== undefined) {
        connection.pendingError = undefined
        return Exit.fail(error)
      }
      const datagram = connection.mailbox.poll()
      return datagram === undefined ? undefined : Exit.succeed(datagram)
    }
    return Receive.datagramOp.poll(connection)
  }
}

/**
 * The next datagram of the current conversation, in arrival order. Fails with `PeerUnreachableError` once
 * when the OS reported that a datagram the conversation sent could not be delivered (client mode, or server
 * mode with `icmp: "report"`), and with
 * `ConnectionClosedError` once the conversation is closed.
 *
 * @since 0.1.0
 */
export const datagram: Effect.Effect<
  DatagramSocket.Datagram,
  UDPError.PeerUnreachableError | Receive.UnsupportedReceiveError | Receive.ReceiveError
> = Receive.run(datagramOp)

/**
 * Send to the peer of the current conversation (core's `Connection.send`).
 *
 * @since 0.1.0
 */
export const send = Connection.send

/**
 * How a conversation ended, as `Conversation.run` reports it (re-exported for handlers' types).
 *
 * @since 0.1.0
 */
export type End = Conversation.End

/**
 * The errors of the receive and send operations of a UDP conversation, for handlers' signatures.
 *
 * @since 0.1.0
 */
export type ConversationError =
  | UDPError.PeerUnreachableError
  | Receive.UnsupportedReceiveError
  | Receive.ReceiveError
  | Connection.SendError

/**
 * The errors of `connect` with a handler built from the conversation operations.
 *
 * @since 0.1.0
 */
export type ConnectError = UDPError.BindError | UDPError.ConversationEndedError | ConversationError

/**
 * Run `f` on every datagram of the current conversation, in arrival order, until `f` fails or the
 * conversation ends. Datagrams already in the mailbox are handled back to back: unlike
 * `Effect.forever(...)`, which yields to the scheduler after every iteration, this yields only when the
 * mailbox is empty (and when the runtime's operation budget says so), which keeps latency low under load.
 *
 * @example
 * ```ts
 * import { Connection } from "@diesel/core"
 * import { UDPConnection } from "@diesel/udp"
 *
 * const echo = UDPConnection.eachDatagram((datagram) => Connection.send(datagram.payload))
 * ```
 *
 * @since 0.1.0
 */
export const eachDatagram = <A, E, R>(
  f: (datagram: DatagramSocket.Datagram) => Effect.Effect<A, E, R>
): Effect.Effect<never, E | ConversationError | UDPError.NotUDPError, R> =>
  Effect.flatMap(current, (connection) => {
    const mailbox = connection.mailbox
    const loop: Effect.Effect<never, E | ConversationError, R> = Effect.suspend(() => {
      const error = connection.pendingError
      if (error !== undefined) {
        connection.pendingError = undefined
        return Effect.fail(error)
      }
      const next = mailbox.poll()
      if (next !== undefined) return Effect.flatMap(f(next), () => loop)
      if (mailbox.isClosed) {
        return Effect.fail(
          new Receive.ConnectionClosedError({
            connectionId: connection.id,
            peer: connection.peer,
            operation: "datagram",
            reason: "closed",
            buffered: new Uint8Array(0)
          })
        )
      }
      return Effect.flatMap(mailbox.awaitChange, () => loop)
    })
    return loop
  })
