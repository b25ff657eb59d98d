/**
 * WebSockets (RFC 6455, with permessage-deflate, RFC 7692) as diesel conversations.
 *
 * A WebSocket is a `Connection`: inside its handler it is the current connection, so `Connection.send`
 * sends a text frame (a string) or a binary frame (bytes), `WebSocket.message` receives the next whole
 * message in order, and `ConnectedLoop.forkChild` children push to the same socket. `connect` opens one
 * to a server (ws or wss, through `TCPClient`, so TLS is verified as for any diesel client) and runs a
 * handler on it; `WebSocketServer` runs a handler per accepted WebSocket.
 *
 * - Messages arrive whole: fragments are reassembled, control frames between them are handled, text is
 *   checked as UTF-8 as it arrives (also across fragments). A peer that breaks the protocol fails the
 *   receive with a `WebSocketError` (and gets close 1002, 1007 or 1009).
 * - Frames and messages are bounded (`maxFrameSize`, `maxMessageSize`, default 16 MiB); so is the
 *   inflated size of a compressed message (a zip bomb is a `MessageTooBig` error).
 * - `send` waits while the peer does not read (TCP backpressure): a slow reader does not grow memory.
 * - `keepAlive: { interval, timeout }` pings the peer and fails the conversation with `PeerTimeout`
 *   when nothing comes back.
 * - When the handler ends the close handshake runs (close 1000; 1011 when the handler failed), within
 *   `closeTimeout` (default 5 s).
 *
 * @since 0.1.0
 */

import type { Network } from "@diesel/core"
import { ConnectedLoop, Connection, Loop, Receive } from "@diesel/core"
import { TCPClient, type TCPConnection, type TCPError } from "@diesel/tcp"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import * as Internal from "./internal/connection.js"
import * as Deflate from "./internal/deflate.js"
import * as Handshake from "./internal/handshake.js"
import { type WebSocketClosedError, WebSocketError } from "./WebSocketError.js"

/**
 * A WebSocket connection: the current connection inside a WebSocket handler.
 *
 * @since 0.1.0
 * @category models
 */
export interface WebSocket extends Connection.Connection {
  readonly transport: "websocket"
  readonly role: "client" | "server"
  /** The negotiated subprotocol, if any. */
  readonly protocol: string | undefined
  /** The negotiated extensions (the Sec-WebSocket-Extensions value; `""` for none). */
  readonly extensions: string
  /** The upgrade request: its path (with the query) and headers (names lower-cased). */
  readonly request: Request
  /** The TCP (or TLS) connection underneath. */
  readonly tcp: TCPConnection.TCPConnection
  /** Send a ping (at most 125 bytes of payload). */
  readonly ping: (payload?: Uint8Array | string) => Effect.Effect<void, Connection.SendError>
  /** Run the close handshake with `code` and `reason`. Idempotent. */
  readonly closeWith: (code: number, reason?: string) => Effect.Effect<void>
}

/**
 * The upgrade request of a WebSocket.
 *
 * @since 0.1.0
 * @category models
 */
export interface Request {
  readonly path: string
  readonly headers: ReadonlyMap<string, string>
}

/**
 * A message: text (a string) or binary (bytes).
 *
 * @since 0.1.0
 * @category models
 */
export type Message = string | Uint8Array

/**
 * permessage-deflate options (RFC 7692). `true` means the defaults: context takeover both ways, 15-bit
 * windows, messages under 64 bytes sent uncompressed.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeflateOptions {
  readonly serverNoContextTakeover?: boolean | undefined
  readonly clientNoContextTakeover?: boolean | undefined
  readonly serverMaxWindowBits?: number | undefined
  readonly clientMaxWindowBits?: number | undefined
  /** Messages shorter than this many bytes are sent uncompressed. Default 64. */
  readonly threshold?: number | undefined
  /** zlib level, 0..9. Default 1. */
  readonly level?: number | undefined
}

/**
 * Limits and timers shared by clients and servers.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Largest frame payload accepted. Default: `maxMessageSize`. */
  readonly maxFrameSize?: number | undefined
  /** Largest message accepted (after reassembly and inflation). Default 16 MiB. */
  readonly maxMessageSize?: number | undefined
  /** Ping every `interval`; fail with `PeerTimeout` when nothing arrives within `timeout` (default: `interval`). */
  readonly keepAlive?: { readonly interval: Duration.Input; readonly timeout?: Duration.Input | undefined } | undefined
  /** How long the close handshake may take before the TCP connection is closed anyway. Default 5 s. */
  readonly closeTimeout?: Duration.Input | undefined
  /** permessage-deflate: offer it (client) or accept it (server). Default: off. */
  readonly deflate?: boolean | DeflateOptions | undefined
}

/**
 * The default limit on a message's size: 16 MiB.
 *
 * @since 0.1.0
 */
export const DEFAULT_MAX_MESSAGE_SIZE = Internal.DEFAULT_MAX_MESSAGE

/**
 * Is `connection` a WebSocket?
 *
 * @since 0.1.0
 * @category guards
 */
export const isWebSocket = (connection: Connection.Connection): connection is WebSocket =>
  Internal.isWebSocket(connection)

/**
 * The current WebSocket; fails with `NoConnectionError` outside a WebSocket handler.
 *
 * @since 0.1.0
 */
export const current: Effect.Effect<WebSocket, Connection.NoConnectionError> = Connection.withCurrent(
  "WebSocket.current",
  (connection) =>
    Internal.isWebSocket(connection)
      ? Effect.succeed(connection)
      : Effect.fail(new Connection.NoConnectionError({ operation: "WebSocket.current" }))
)

/**
 * The next message as a receive operation, for `Event.first` (a message that loses the race stays
 * queued). When the connection drops, `Event.first` reports the `ConnectionClosedError`; `message` turns
 * it into `WebSocketClosedError` (1006) or `PeerTimeout`.
 *
 * @example
 * ```ts
 * import { Event } from "@diesel/core"
 * import { WebSocket } from "@diesel/http"
 * import { Effect } from "effect"
 *
 * const nextOrIdle = Event.first({ receive: WebSocket.messageOp, sleep: "30 seconds" })
 * ```
 *
 * @since 0.1.0
 */
export const messageOp: Receive.ReceiveOp<
  Message,
  WebSocketError | WebSocketClosedError | Receive.UnsupportedReceiveError
> = {
  operation: "WebSocket.message",
  poll: (connection) => {
    const state = Internal.stateOf(connection)
    if (state === undefined) {
      return Exit.fail(
        new Receive.UnsupportedReceiveError({ operation: "WebSocket.message", transport: connection.transport })
      )
    }
    return state.toExit(state.poll())
  }
}

/**
 * Receive the next message of the current WebSocket: text as a string, binary as bytes, whole and in
 * order. Fails with `WebSocketClosedError` when the peer closes, `WebSocketError` when it breaks the
 * protocol or a limit.
 *
 * @example
 * ```ts
 * import { Connection } from "@diesel/core"
 * import { WebSocket } from "@diesel/http"
 * import { Effect } from "effect"
 *
 * const echo = Effect.forever(Effect.flatMap(WebSocket.message, Connection.send))
 * ```
 *
 * @since 0.1.0
 */
export const message: Effect.Effect<
  Message,
  WebSocketError | WebSocketClosedError | Receive.UnsupportedReceiveError | Connection.NoConnectionError
> = Connection.withCurrent(
  "WebSocket.message",
  (connection): Effect.Effect<Message, WebSocketError | WebSocketClosedError | Receive.UnsupportedReceiveError> => {
    const state = Internal.stateOf(connection)
    return state === undefined
      ? Effect.fail(
          new Receive.UnsupportedReceiveError({ operation: "WebSocket.message", transport: connection.transport })
        )
      : state.receive
  }
)

/**
 * Send a ping on the current WebSocket.
 *
 * @since 0.1.0
 */
export const ping = (
  payload?: Uint8Array | string
): Effect.Effect<void, Connection.SendError | Connection.NoConnectionError> =>
  Effect.flatMap(current, (ws) => ws.ping(payload))

/**
 * Close the current WebSocket with a code and reason (the close handshake).
 *
 * @since 0.1.0
 */
export const close = (code = 1000, reason = ""): Effect.Effect<void, Connection.NoConnectionError> =>
  Effect.flatMap(current, (ws) => ws.closeWith(code, reason))

/**
 * What a WebSocket conversation runs: an effect (the WebSocket is current), or a function of it.
 *
 * @since 0.1.0
 */
export type Handler<A, E, R> = Effect.Effect<A, E, R> | ((ws: WebSocket) => Effect.Effect<A, E, R>)

/** @internal */
export const deflateOptions = (deflate: Options["deflate"]): DeflateOptions | undefined =>
  deflate === undefined || deflate === false ? undefined : deflate === true ? {} : deflate

/**
 * Run `handler` with `ws` as the current connection, the keep-alive loop beside it; then the close
 * handshake (1000, or 1011 when the handler failed).
 *
 * @internal
 */
export const runHandler = <A, E, R>(
  ws: Internal.WebSocketConnection,
  handler: Handler<A, E, R>,
  options: Options
): Effect.Effect<A, E, R> => {
  const body = typeof handler === "function" ? handler(ws) : handler
  const state = ws[Internal.StateId]
  const keepAlive = options.keepAlive
  const withKeepAlive =
    keepAlive === undefined
      ? body
      : Effect.andThen(
          ConnectedLoop.forkChild(state.keepAlive(keepAlive.interval, keepAlive.timeout ?? keepAlive.interval), {
            label: "websocket keep-alive"
          }),
          body
        )
  return Effect.onExit(Connection.withConnection(withKeepAlive, ws), (exit) =>
    Exit.isSuccess(exit) || state.peerClosed !== undefined
      ? state.closeWith(1000)
      : state.closeWith(1011, "handler failed")
  )
}

/**
 * Options of `connect`.
 *
 * @since 0.1.0
 */
export interface ConnectOptions extends Options {
  /** Subprotocols to offer (Sec-WebSocket-Protocol); the server picks one or none. */
  readonly protocols?: ReadonlyArray<string> | undefined
  /** Origin header (browsers send one; servers may check it). */
  readonly origin?: string | undefined
  /** More request headers (e.g. Authorization). */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** TLS options for wss (verification on by default). */
  readonly tls?: Network.TlsClientOptions | undefined
  /** Time for the TCP connection, TLS and the opening handshake, each. Default 10 s. */
  readonly timeout?: Duration.Input | undefined
  /** Largest handshake response head. Default 16 KiB. */
  readonly maxHeadSize?: number | undefined
}

const handshakeError = (peer: string, detail: string, cause?: unknown) =>
  new WebSocketError({ reason: "Handshake", peer, closeCode: 0, detail, cause })

/**
 * Open a WebSocket to `url` (`ws://` or `wss://`) and run `handler` on it as a conversation: the
 * WebSocket is the current connection (so the handler works inside any other conversation, whose
 * connection is current again afterwards). Returns what the handler returns, after the close handshake.
 *
 * @example
 * ```ts
 * import { Connection } from "@diesel/core"
 * import { WebSocket } from "@diesel/http"
 * import { Effect } from "effect"
 *
 * const hello = WebSocket.connect(
 *   "ws://127.0.0.1:8080/chat",
 *   Effect.andThen(Connection.send("hello"), WebSocket.message),
 *   { protocols: ["chat.v1"] }
 * )
 * ```
 *
 * @since 0.1.0
 */
export const connect = <A, E, R>(
  url: string | URL,
  handler: Handler<A, E, R>,
  options: ConnectOptions = {}
): Effect.Effect<A, E | WebSocketError | TCPError.ConnectError, R> =>
  Effect.scoped(
    Effect.gen(function* () {
      const ws = yield* openInternal(url, options)
      return yield* Loop.trackWith(
        runHandler(ws, handler, options),
        "conversation",
        `websocket client ${url.toString()}`,
        {
          connection: ws
        }
      )
    })
  )

/**
 * Open a WebSocket in the current scope without running a handler: use it with `TCPClient.call`-style
 * `Connection.withConnection`, or as a long-lived client. Closed (close handshake) with the scope.
 *
 * @since 0.1.0
 */
export const open = (
  url: string | URL,
  options: ConnectOptions = {}
): Effect.Effect<WebSocket, WebSocketError | TCPError.ConnectError, Scope.Scope> => openInternal(url, options)

const openInternal = (
  url: string | URL,
  options: ConnectOptions
): Effect.Effect<Internal.WebSocketConnection, WebSocketError | TCPError.ConnectError, Scope.Scope> =>
  Effect.gen(function* () {
    const parsed = typeof url === "string" ? new URL(url) : url
    const secure = parsed.protocol === "wss:" || parsed.protocol === "https:"
    if (!secure && parsed.protocol !== "ws:" && parsed.protocol !== "http:") {
      return yield* handshakeError(parsed.host, `unsupported URL scheme ${parsed.protocol}`)
    }
    if (parsed.hash !== "") return yield* handshakeError(parsed.host, "a WebSocket URL has no fragment")
    const host = parsed.hostname.startsWith("[") ? parsed.hostname.slice(1, -1) : parsed.hostname
    const port = parsed.port === "" ? (secure ? 443 : 80) : Number(parsed.port)
    const timeout = options.timeout ?? "10 seconds"
    const tcp = yield* TCPClient.connect({ host, port, timeout, tls: secure ? (options.tls ?? true) : undefined })
    const peer = Connection.formatAddress(tcp.remoteAddress)
    const key = Handshake.makeKey()
    const protocols = options.protocols ?? []
    const deflate = deflateOptions(options.deflate)
    const request = Handshake.clientRequest({
      path: `${parsed.pathname === "" ? "/" : parsed.pathname}${parsed.search}`,
      host: parsed.host,
      key,
      protocols,
      extensions: deflate === undefined ? undefined : Deflate.clientOffer(deflate),
      origin: options.origin,
      headers: options.headers ?? {}
    })
    const head = yield* Effect.gen(function* () {
      yield* tcp.send(request)
      return yield* Receive.runWith(tcp, Receive.untilOp("\r\n\r\n", { maxBytes: options.maxHeadSize ?? 16 * 1024 }))
    }).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(handshakeError(peer, "no handshake response in time"))
      }),
      Effect.mapError((error) =>
        error instanceof WebSocketError ? error : handshakeError(peer, `handshake response: ${error.message}`, error)
      )
    )
    const response = Handshake.parseHead(head)
    if (typeof response === "string") return yield* handshakeError(peer, response)
    const [version, status] = response.start
    const headers = response.headers
    if (version !== "HTTP/1.1" || status !== "101") {
      return yield* handshakeError(peer, `expected 101 Switching Protocols, got ${version} ${status}`)
    }
    if (!Handshake.tokens(headers.get("upgrade")).includes("websocket")) {
      return yield* handshakeError(peer, "the response has no Upgrade: websocket")
    }
    if (!Handshake.tokens(headers.get("connection")).includes("upgrade")) {
      return yield* handshakeError(peer, "the response has no Connection: upgrade")
    }
    if (headers.get("sec-websocket-accept") !== Handshake.acceptKey(key)) {
      return yield* handshakeError(peer, "wrong Sec-WebSocket-Accept")
    }
    const chosen = headers.get("sec-websocket-protocol")
    if (chosen !== undefined && !protocols.includes(chosen)) {
      return yield* handshakeError(peer, `the server chose a subprotocol that was not offered: ${chosen}`)
    }
    const extensions = headers.get("sec-websocket-extensions")
    let perMessage: Deflate.PerMessageDeflate | undefined
    if (extensions !== undefined && extensions.trim() !== "") {
      if (deflate === undefined) return yield* handshakeError(peer, `unrequested extension: ${extensions}`)
      const params = Deflate.confirm(extensions, deflate)
      if (typeof params === "string") return yield* handshakeError(peer, params)
      perMessage = new Deflate.PerMessageDeflate(params, deflate)
    }
    const ws = Internal.make({
      tcp,
      role: "client",
      protocol: chosen,
      extensions: extensions ?? "",
      request: { path: `${parsed.pathname}${parsed.search}`, headers },
      deflate: perMessage,
      limits: options
    })
    yield* Effect.addFinalizer(() => ws.closeWith(1000))
    return ws
  })
