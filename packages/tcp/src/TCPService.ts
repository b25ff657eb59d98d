/**
 * A TCP service: diesel's `Service`. It listens on a port and runs a conversation per accepted
 * connection, with that connection as the current one, so the handler uses `send`, `receive`, `until`
 * and `untilEol` with no connection argument.
 *
 * - `port: 0` picks a free port; the bound address is in the `TCPService` service (`address`, `port`).
 * - `maxConnections` bounds concurrent conversations; `whenFull` says what happens to a connection
 *   accepted while full: `"close"` (default) closes it at once, `"wait"` holds it unread until a
 *   conversation ends.
 * - `idleTimeout` closes a conversation in which no byte arrived or was sent for that long.
 * - Shutdown (closing the layer's scope) is graceful: the listener closes at once, running conversations
 *   get `drainTimeout` (default 10 s) to finish, then the rest are interrupted and their sockets closed.
 * - `tls` (certificate and key) makes it a TLS service.
 *
 * @since 0.1.0
 */
import { Application, Connection, Conversation, Network, Receive } from "@diesel/core"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import type * as Socket from "effect/socket/Socket"
import * as Metrics from "./Metrics.js"
import * as TCPConnection from "./TCPConnection.js"
import { ListenError } from "./TCPError.js"

/**
 * What a conversation runs: an effect (the connection is current), or a function of the connection.
 *
 * @since 0.1.0
 */
export type Handler<A, E, R> =
  | Effect.Effect<A, E, R>
  | ((connection: TCPConnection.TCPConnection) => Effect.Effect<A, E, R>)

/**
 * Options of a TCP service.
 *
 * @since 0.1.0
 */
export interface Options<A, E, R> {
  /** The conversation run for every accepted connection. */
  readonly handler: Handler<A, E, R>
  /** Address to listen on. Default: every interface (`::`, with IPv4 mapped). `"127.0.0.1"`, `"::1"`... */
  readonly host?: string | undefined
  /** Port; 0 (the default) picks a free one. */
  readonly port?: number | undefined
  /** Name in logs, loop labels and metric attributes (`service`). Default `"tcp"`. */
  readonly name?: string | undefined
  /** Maximum concurrent conversations. Default: unbounded. */
  readonly maxConnections?: number | undefined
  /**
   * What happens to a connection accepted while `maxConnections` conversations run: `"close"` (default)
   * closes it at once (counted in `Metrics.connectionsRejected`); `"wait"` holds it, unread, until a
   * conversation ends.
   */
  readonly whenFull?: "close" | "wait" | undefined
  /** Close a conversation after this long without a byte in either direction. Default: none. */
  readonly idleTimeout?: Duration.Input | undefined
  /** How long running conversations may take to finish on shutdown before they are interrupted. Default 10 s. */
  readonly drainTimeout?: Duration.Input | undefined
  /** Certificate and key: serve TLS. */
  readonly tls?: Network.TlsServerOptions | undefined
  readonly backlog?: number | undefined
  readonly ipv6Only?: boolean | undefined
  readonly reusePort?: boolean | undefined
  /** Disable Nagle's algorithm (default `true`). */
  readonly noDelay?: boolean | undefined
}

/**
 * A running service.
 *
 * @since 0.1.0
 */
export interface Service {
  readonly name: string
  /** The bound address. */
  readonly address: NetAddress.SocketAddress
  /** The bound port (0 for a Unix socket). */
  readonly port: number
  /** Conversations running now. */
  readonly connections: () => number
}

/**
 * The service provided by `layer`.
 *
 * @since 0.1.0
 */
export class TCPService extends Context.Service<TCPService, Service>()("@diesel/tcp/TCPService") {}

/**
 * The default shutdown drain deadline.
 *
 * @since 0.1.0
 */
export const DEFAULT_DRAIN_TIMEOUT: Duration.Duration = Duration.seconds(10)

const addressOf = (host: string | undefined, port: number | undefined): NetAddress.SocketAddress | undefined => {
  if (host === undefined || port === undefined) return undefined
  const parsed = NetAddress.inetAddressFromIpString(host, port)
  return Result.isSuccess(parsed) ? parsed.success : undefined
}

/** Both ends of an accepted socket: from the Node socket, or as another network reports them. */
const socketAddresses = Effect.gen(function* () {
  const ends = yield* Effect.serviceOption(Network.AcceptedEnds)
  if (Option.isSome(ends)) return ends.value
  const raw = yield* Effect.serviceOption(NodeSocket.NetSocket)
  return Option.match(raw, {
    onNone: () => ({ local: undefined, remote: undefined }),
    onSome: (socket) => ({
      local: addressOf(socket.localAddress, socket.localPort),
      remote: addressOf(socket.remoteAddress, socket.remotePort)
    })
  })
})

const isPeerClosed = (error: unknown): error is Receive.ConnectionClosedError =>
  error instanceof Receive.ConnectionClosedError && error.reason !== "closed"

/**
 * Resolve when `connection` has been idle (no byte in or out) for `idleMillis`.
 *
 * @since 0.1.0
 */
export const awaitIdle = (connection: TCPConnection.TCPConnection, idleMillis: number): Effect.Effect<void> =>
  Effect.gen(function* () {
    while (true) {
      const now = yield* Clock.currentTimeMillis
      const due = connection.lastActivity() + idleMillis
      if (now >= due) return
      yield* Effect.sleep(due - now)
    }
  })

/**
 * Start a service in the current scope and return it. Closing the scope shuts it down gracefully.
 *
 * @example
 * ```ts
 * import { Receive, Connection } from "@diesel/core"
 * import { TCPService } from "@diesel/tcp"
 * import { Effect } from "effect"
 *
 * const echo = Effect.forever(Effect.flatMap(Receive.untilEol(), Connection.send))
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const service = yield* TCPService.make({ host: "127.0.0.1", port: 0, handler: echo })
 *   yield* Effect.log(`listening on ${service.port}`)
 *   yield* Effect.never
 * }))
 * ```
 *
 * @since 0.1.0
 */
export const make = <A, E, R>(options: Options<A, E, R>): Effect.Effect<Service, ListenError, R | Scope.Scope> =>
  Effect.gen(function* () {
    const name = options.name ?? "tcp"
    const metricAttributes = { role: "server", service: name }
    const outer = yield* Effect.scope
    const net = yield* Network.Network
    const listenScope = yield* Scope.fork(outer)
    const server = yield* Scope.provide(
      net.listen({
        host: options.host,
        port: options.port ?? 0,
        backlog: options.backlog,
        ipv6Only: options.ipv6Only,
        reusePort: options.reusePort,
        noDelay: options.noDelay,
        // Node's TLS server leaks sockets whose handshake fails when half-open is allowed; TLS half-close
        // (close_notify) is not supported anyway
        allowHalfOpen: options.tls === undefined,
        tls: options.tls
      }),
      listenScope
    ).pipe(
      Effect.mapError(
        (error) => new ListenError({ host: options.host ?? "::", port: options.port ?? 0, cause: error.reason })
      )
    )
    const address = server.address
    const port = NetAddress.isInetAddress(address) ? address.port : 0
    const idleMillis =
      options.idleTimeout === undefined ? undefined : Duration.toMillis(Duration.fromInputUnsafe(options.idleTimeout))
    const drainTimeout = options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT
    const max = options.maxConnections
    if (max !== undefined && (!Number.isSafeInteger(max) || max < 1)) {
      return yield* Effect.die(new RangeError(`TCPService: maxConnections must be a positive integer, got ${max}`))
    }
    const whenFull = options.whenFull ?? "close"
    const slots = max !== undefined && whenFull === "wait" ? yield* Semaphore.make(max) : undefined
    const userHandler = options.handler

    const conversationScope = yield* Scope.fork(outer)
    const conversations = yield* Scope.provide(FiberSet.make<unknown, never>(), conversationScope)
    const live = new Set<TCPConnection.TCPConnection>()
    let running = 0

    const converse = (socket: Socket.Socket) =>
      Effect.gen(function* () {
        const addresses = yield* socketAddresses
        const connection = yield* TCPConnection.make({
          socket,
          role: "server",
          localAddress: addresses.local,
          remoteAddress: addresses.remote,
          metrics: metricAttributes
        })
        live.add(connection)
        yield* Effect.addFinalizer(() => Effect.sync(() => live.delete(connection)))
        const body = (Effect.isEffect(userHandler) ? userHandler : userHandler(connection)).pipe(
          // the peer hanging up is how most conversations end: not a failure of the service
          Effect.catchIf(isPeerClosed, (error) => Effect.logDebug(`${name}: peer closed`, error))
        )
        const handler =
          idleMillis === undefined
            ? body
            : Effect.raceFirst(
                body,
                // abort: a graceful close could wait forever on a peer that stopped reading
                awaitIdle(connection, idleMillis).pipe(
                  Effect.andThen(Metrics.recordIdleTimeout(metricAttributes)),
                  Effect.andThen(connection.abort)
                )
              )
        const end = yield* Conversation.run(connection, handler, {
          label: `${name} ${Connection.formatAddress(connection.remoteAddress)}`
        })
        if (end._tag === "Interrupted") yield* connection.abort
      }).pipe(
        Effect.scoped,
        Effect.catch((error) => Effect.logDebug(`${name}: accepted connection failed to open`, error))
      )

    const track = (effect: Effect.Effect<void, never, R>) =>
      Effect.suspend(() => {
        running++
        return Effect.ensuring(
          effect,
          Effect.sync(() => {
            running--
          })
        )
      })

    const reject = (socket: Socket.Socket) =>
      Effect.andThen(
        Metrics.recordRejected(metricAttributes),
        Effect.ignore(Effect.scoped(Effect.asVoid(socket.reader)))
      )

    const onAccept = (socket: Socket.Socket): Effect.Effect<unknown, never, R> => {
      if (slots !== undefined) return FiberSet.run(conversations, slots.withPermit(track(converse(socket))))
      if (max !== undefined && running >= max) return reject(socket)
      return FiberSet.run(conversations, track(converse(socket)), { startImmediately: true })
    }

    const accepting = yield* Effect.forkIn(server.run(onAccept), outer)

    // Closing the listener stops accepting at once; it completes when every socket has closed.
    let listenerClosed: Fiber.Fiber<void> | undefined
    // Draining closes the listener first, while connections Node has already accepted still reach a
    // conversation (interrupting the accept loop first leaves them queued, then destroyed: a reset under a
    // rolling restart). Teardown interrupts the accept loop first.
    const stopAcceptingWith = (graceful: boolean) =>
      Effect.uninterruptible(
        Effect.suspend(() =>
          listenerClosed !== undefined
            ? Effect.void
            : Effect.gen(function* () {
                if (graceful) {
                  listenerClosed = yield* Effect.forkDetach(Scope.close(listenScope, Exit.void), {
                    startImmediately: true
                  })
                  yield* Fiber.interrupt(accepting)
                } else {
                  yield* Fiber.interrupt(accepting)
                  listenerClosed = yield* Effect.forkDetach(Scope.close(listenScope, Exit.void))
                }
              })
        )
      )
    const stopAccepting = stopAcceptingWith(false)
    // In an Application, stop accepting as soon as it starts draining (conversations carry on).
    yield* Effect.forkIn(Effect.andThen(Application.whenDraining, stopAcceptingWith(true)), outer)

    // Registered last, so it runs first when the scope closes.
    yield* Scope.addFinalizer(
      outer,
      Effect.gen(function* () {
        yield* stopAccepting
        const drained = yield* Effect.timeoutOption(FiberSet.awaitEmpty(conversations), drainTimeout)
        if (Option.isNone(drained)) {
          yield* Effect.logDebug(`${name}: ${running} conversation(s) still running after the drain timeout`)
          // abort first: a conversation closing gracefully may be waiting for a peer that does not read
          for (const connection of live) yield* connection.abort
          yield* Scope.close(conversationScope, Exit.void)
        }
        if (listenerClosed !== undefined) yield* Fiber.join(listenerClosed)
      })
    )

    return { name, address, port, connections: () => running }
  })

/**
 * A layer that runs the service for as long as it is alive and provides `TCPService`.
 *
 * @example
 * ```ts
 * import { Connection, Receive } from "@diesel/core"
 * import { TCPService } from "@diesel/tcp"
 * import { Effect, Layer } from "effect"
 *
 * const EchoService = TCPService.layer({
 *   port: 7000,
 *   handler: Effect.forever(Effect.flatMap(Receive.untilEol(), Connection.send))
 * })
 * // Layer.launch(EchoService) runs it until interrupted
 * ```
 *
 * @since 0.1.0
 */
export const layer = <A, E, R>(options: Options<A, E, R>): Layer.Layer<TCPService, ListenError, R> =>
  Layer.effect(TCPService, make(options))
