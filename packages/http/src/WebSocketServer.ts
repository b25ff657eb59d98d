/**
 * WebSocket servers: a handler per accepted WebSocket, as a diesel conversation.
 *
 * `layer` is a `TCPService` whose conversations start with the opening handshake: the kernel's limits
 * (`maxConnections`, `idleTimeout`, drain on shutdown), metrics and live table apply to WebSockets as to
 * any TCP conversation, and `Loop.list` shows each one labelled `websocket <path>`. `handle` is the same
 * entry point for a TCP connection you already hold (a TCP handler of your own, or a connection handed
 * over by an HTTP upgrade); `accept` takes a request head already read.
 *
 * The handshake checks the request (GET, HTTP/1.1, Upgrade/Connection, version 13, a valid key), asks
 * `checkOrigin` (403 when it says no), picks a subprotocol (the first of `protocols` the client offered)
 * and negotiates permessage-deflate when `deflate` is on. A refused or malformed upgrade gets its HTTP
 * answer (400, 403, or 426 with the supported version) and the conversation fails with a `Handshake`
 * `WebSocketError`.
 *
 * @since 0.1.0
 */
import { Connection, Loop, Receive } from "@diesel/core"
import { type TCPConnection, type TCPError, TCPService } from "@diesel/tcp"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Internal from "./internal/connection.js"
import * as Deflate from "./internal/deflate.js"
import * as Handshake from "./internal/handshake.js"
import * as WebSocket from "./WebSocket.js"
import { WebSocketClosedError, WebSocketError } from "./WebSocketError.js"

/**
 * Options of a WebSocket handler: limits, negotiation and the handler itself.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandlerOptions<A, E, R> extends WebSocket.Options {
  /** The conversation run for every WebSocket. */
  readonly handler: WebSocket.Handler<A, E, R>
  /** Subprotocols this server speaks, preferred first: the first one the client offered is chosen. */
  readonly protocols?: ReadonlyArray<string> | undefined
  /** Accept or refuse (403) an upgrade by its Origin header and request. Default: accept all. */
  readonly checkOrigin?: ((origin: string | undefined, request: WebSocket.Request) => boolean) | undefined
  /** Largest request head. Default 16 KiB. */
  readonly maxHeadSize?: number | undefined
  /** Time for the client to send its request head. Default 10 s. */
  readonly handshakeTimeout?: Duration.Input | undefined
}

/**
 * Options of `layer`: a handler, and the TCP service's.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A, E, R>
  extends HandlerOptions<A, E, R>,
    Omit<TCPService.Options<unknown, unknown, never>, "handler"> {}

const failHandshake = (
  tcp: TCPConnection.TCPConnection,
  status: number,
  text: string,
  detail: string,
  extra?: ReadonlyArray<string>
) =>
  Effect.andThen(
    Effect.ignore(tcp.send(Handshake.refusal(status, text, extra))),
    Effect.fail(
      new WebSocketError({
        reason: "Handshake",
        peer: peerOf(tcp),
        closeCode: 0,
        detail
      })
    )
  )

const peerOf = (tcp: TCPConnection.TCPConnection): string => Connection.formatAddress(tcp.remoteAddress)

/**
 * Complete the handshake for a request head already read from `tcp` (the bytes up to and including the
 * empty line), then run the handler with the WebSocket current.
 *
 * @since 0.1.0
 */
export const accept = <A, E, R>(
  tcp: TCPConnection.TCPConnection,
  head: Uint8Array,
  options: HandlerOptions<A, E, R>
): Effect.Effect<A | undefined, E | WebSocketError, R> =>
  Effect.gen(function* () {
    const parsed = Handshake.parseHead(head)
    if (typeof parsed === "string") return yield* failHandshake(tcp, 400, "Bad Request", parsed)
    const [method, path, version] = parsed.start
    const headers = parsed.headers
    if (method !== "GET")
      return yield* failHandshake(tcp, 405, "Method Not Allowed", `${method} is not GET`, ["Allow: GET"])
    if (version !== "HTTP/1.1") return yield* failHandshake(tcp, 400, "Bad Request", `${version} is not HTTP/1.1`)
    if (!headers.has("host")) return yield* failHandshake(tcp, 400, "Bad Request", "no Host header")
    if (!Handshake.tokens(headers.get("upgrade")).includes("websocket")) {
      return yield* failHandshake(tcp, 426, "Upgrade Required", "no Upgrade: websocket", ["Upgrade: websocket"])
    }
    if (!Handshake.tokens(headers.get("connection")).includes("upgrade")) {
      return yield* failHandshake(tcp, 400, "Bad Request", "no Connection: upgrade")
    }
    if (headers.get("sec-websocket-version") !== "13") {
      return yield* failHandshake(
        tcp,
        426,
        "Upgrade Required",
        `unsupported version ${headers.get("sec-websocket-version") ?? "(none)"}`,
        ["Sec-WebSocket-Version: 13"]
      )
    }
    const key = headers.get("sec-websocket-key")
    if (!Handshake.isValidKey(key)) return yield* failHandshake(tcp, 400, "Bad Request", "invalid Sec-WebSocket-Key")
    const request: WebSocket.Request = { path, headers }
    if (options.checkOrigin !== undefined && !options.checkOrigin(headers.get("origin"), request)) {
      return yield* failHandshake(tcp, 403, "Forbidden", `origin ${headers.get("origin") ?? "(none)"} refused`)
    }
    const offered = Handshake.protocols(headers.get("sec-websocket-protocol"))
    const protocol = options.protocols?.find((name) => offered.includes(name))
    const deflateOptions = WebSocket.deflateOptions(options.deflate)
    const extensionsHeader = headers.get("sec-websocket-extensions")
    const negotiated =
      deflateOptions === undefined || extensionsHeader === undefined
        ? undefined
        : Deflate.accept(extensionsHeader, deflateOptions)
    const lines = [
      "HTTP/1.1 101 Switching Protocols",
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Accept: ${Handshake.acceptKey(key)}`
    ]
    if (protocol !== undefined) lines.push(`Sec-WebSocket-Protocol: ${protocol}`)
    if (negotiated !== undefined) lines.push(`Sec-WebSocket-Extensions: ${negotiated.response}`)
    yield* Effect.mapError(
      tcp.send(`${lines.join("\r\n")}\r\n\r\n`),
      (error) =>
        new WebSocketError({
          reason: "Handshake",
          peer: peerOf(tcp),
          closeCode: 0,
          detail: error.message,
          cause: error
        })
    )
    const ws = Internal.make({
      tcp,
      role: "server",
      protocol,
      extensions: negotiated?.response ?? "",
      request,
      deflate:
        negotiated === undefined || deflateOptions === undefined
          ? undefined
          : new Deflate.PerMessageDeflate(negotiated.params, deflateOptions),
      limits: options
    })
    yield* Loop.label(`websocket ${path}`)
    // the peer closing is how most WebSocket conversations end: not a failure of the conversation
    return yield* Effect.catchIf(
      WebSocket.runHandler(ws, options.handler, options),
      (error) => error instanceof WebSocketClosedError,
      () => Effect.undefined
    )
  })

/**
 * The server side of a WebSocket on a TCP connection: read the upgrade request, answer it, run the
 * handler. Use it as (or inside) a `TCPService` handler.
 *
 * @example
 * ```ts
 * import { Connection } from "@diesel/core"
 * import { WebSocket, WebSocketServer } from "@diesel/http"
 * import { TCPService } from "@diesel/tcp"
 * import { Effect } from "effect"
 *
 * const echo = TCPService.layer({
 *   port: 8080,
 *   handler: WebSocketServer.handle({ handler: Effect.forever(Effect.flatMap(WebSocket.message, Connection.send)) })
 * })
 * ```
 *
 * @since 0.1.0
 */
export const handle =
  <A, E, R>(options: HandlerOptions<A, E, R>) =>
  (
    tcp: TCPConnection.TCPConnection
  ): Effect.Effect<
    A | undefined,
    E | WebSocketError | Receive.ReceiveError | Receive.LimitExceededError | Receive.UnsupportedReceiveError,
    R
  > =>
    Effect.flatMap(
      Effect.timeoutOrElse(
        Receive.runWith(tcp, Receive.untilOp("\r\n\r\n", { maxBytes: options.maxHeadSize ?? 16 * 1024 })),
        {
          duration: options.handshakeTimeout ?? "10 seconds",
          orElse: () =>
            Effect.fail(
              new WebSocketError({
                reason: "Handshake",
                peer: peerOf(tcp),
                closeCode: 0,
                detail: "no upgrade request in time"
              })
            )
        }
      ),
      (head) => accept(tcp, head, options)
    )

/**
 * A WebSocket server: a `TCPService` (port, limits, TLS, drain) whose every connection is a WebSocket
 * conversation running `handler`.
 *
 * @example
 * ```ts
 * import { Connection } from "@diesel/core"
 * import { WebSocket, WebSocketServer } from "@diesel/http"
 * import { Effect } from "effect"
 *
 * const EchoServer = WebSocketServer.layer({
 *   port: 8080,
 *   protocols: ["echo"],
 *   keepAlive: { interval: "30 seconds" },
 *   handler: Effect.forever(Effect.flatMap(WebSocket.message, Connection.send))
 * })
 * ```
 *
 * @since 0.1.0
 */
export const layer = <A, E, R>(
  options: Options<A, E, R>
): Layer.Layer<TCPService.TCPService, TCPError.ListenError, R> =>
  TCPService.layer({ ...options, name: options.name ?? "websocket", handler: handle(options) })
