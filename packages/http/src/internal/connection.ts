/**
 * A WebSocket over a TCP (or TLS) connection, as a diesel `Connection`: the state both roles share once
 * the opening handshake is done.
 *
 * Receive is pull-on-demand like TCP's: a `message` poll moves what the TCP connection has buffered into
 * the frame reader and returns the next whole message; when there is none it waits on the TCP input, so
 * a conversation that stops reading stops the peer (TCP backpressure) and holds at most one frame.
 * Pings are answered when the conversation next receives or waits for input. Sends are framed straight
 * into the TCP outbox (one chunk up to COPY_LIMIT, header and payload beyond), under a lock only while a
 * frame of two chunks or a compressed message is in flight, so frames from several fibers never interleave.
 *
 * @internal
 */
import { ByteBuffer, Connection } from "@diesel/core"
import type { TCPConnection } from "@diesel/tcp"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as WebSocket from "../WebSocket.js"
import { WebSocketClosedError, WebSocketError, type WebSocketErrorReason } from "../WebSocketError.js"
import type * as Deflate from "./deflate.js"
import * as Frame from "./frame.js"
import * as Reader from "./reader.js"

/** @internal */
export const StateId: unique symbol = Symbol.for("@diesel/http/WebSocket/State")

/** Options shared by client and server. @internal */
export interface LimitOptions {
  readonly maxFrameSize?: number | undefined
  readonly maxMessageSize?: number | undefined
  readonly keepAlive?: { readonly interval: Duration.Input; readonly timeout?: Duration.Input | undefined } | undefined
  readonly closeTimeout?: Duration.Input | undefined
}

/** @internal */
export const DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024

/** @internal */
export interface Request {
  readonly path: string
  readonly headers: ReadonlyMap<string, string>
}

/** The public `WebSocket.WebSocket`, with the state only this package reads. @internal */
export interface WebSocketConnection extends WebSocket.WebSocket {
  readonly [StateId]: State
}

const encoder = new TextEncoder()
const EMPTY = new Uint8Array(0)

/** @internal */
export class State {
  readonly reader: Reader.MessageReader
  readonly mask: boolean
  readonly peer: string
  /** The last ping's payload, to answer (RFC 6455 5.5.3: answering only the most recent is allowed). */
  pongDue: Uint8Array | undefined = undefined
  pongs = 0
  violation: Frame.Violation | undefined = undefined
  peerClosed: Reader.Closed | undefined = undefined
  deadPeer = false
  closing = false
  /** A multi-chunk frame or a compressed message is being queued: other sends wait their turn. */
  private busy = false
  private waiting: Array<() => void> = []
  readonly closeTimeout: Duration.Duration

  constructor(
    readonly tcp: TCPConnection.TCPConnection,
    readonly role: "client" | "server",
    readonly deflate: Deflate.PerMessageDeflate | undefined,
    readonly limits: LimitOptions
  ) {
    this.mask = role === "client"
    this.peer = Connection.formatAddress(tcp.remoteAddress)
    const maxMessageSize = limits.maxMessageSize ?? DEFAULT_MAX_MESSAGE
    this.reader = new Reader.MessageReader({
      server: role === "server",
      maxFrameSize: limits.maxFrameSize ?? maxMessageSize,
      maxMessageSize,
      deflate,
      onControl: (opcode, payload) => {
        if (opcode === Frame.OP_PING) this.pongDue = payload
        else this.pongs++
      }
    })
    this.closeTimeout = Duration.fromInputUnsafe(limits.closeTimeout ?? "5 seconds")
  }

  error(reason: WebSocketErrorReason, closeCode: number, detail: string, cause?: unknown): WebSocketError {
    return new WebSocketError({ reason, peer: this.peer, closeCode, detail, cause })
  }

  /** Move what TCP has buffered into the reader and return the next message, close or violation. */
  poll(): Reader.Next {
    const buffer = this.tcp.input.buffer
    for (;;) {
      const chunk = buffer.takeAny(Number.MAX_SAFE_INTEGER)
      if (chunk === undefined) break
      this.reader.push(chunk)
    }
    return this.reader.next()
  }

  /** The outcome of a poll as the `message` operation reports it. */
  toExit(next: Reader.Next): Exit.Exit<string | Uint8Array, WebSocketError | WebSocketClosedError> | undefined {
    if (next === undefined) return undefined
    if (typeof next === "string" || next instanceof Uint8Array) return Exit.succeed(next)
    if (next instanceof Reader.Closed) {
      this.peerClosed = next
      return Exit.fail(new WebSocketClosedError({ peer: this.peer, closeCode: next.code, closeReason: next.reason }))
    }
    this.violation = next
    const reason = next.code === 1009 ? "MessageTooBig" : next.code === 1007 ? "InvalidPayload" : "Protocol"
    return Exit.fail(this.error(reason, next.code, next.detail))
  }

  /** How a receive reports the TCP input ending under it. */
  inputEnded(): WebSocketError | WebSocketClosedError {
    if (this.deadPeer) return this.error("PeerTimeout", 1006, "no answer to ping within the dead-peer timeout")
    return new WebSocketClosedError({ peer: this.peer, closeCode: 1006, closeReason: "" })
  }

  // --- send ------------------------------------------------------------------------------------------

  private readonly release = () => {
    const next = this.waiting.shift()
    if (next === undefined) this.busy = false
    else next()
  }

  private readonly acquire = Effect.callback<void>((resume) => {
    const wake = () => resume(Effect.void)
    this.waiting.push(wake)
    return Effect.sync(() => {
      const index = this.waiting.indexOf(wake)
      if (index >= 0) this.waiting.splice(index, 1)
      // woken and interrupted at once: pass the turn on
      else if (this.busy) this.release()
    })
  })

  /** Run `effect` holding the send lock. */
  private locked<A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> {
    return Effect.suspend(() => {
      if (!this.busy) {
        this.busy = true
        return Effect.ensuring(effect, Effect.sync(this.release))
      }
      return Effect.andThen(this.acquire, Effect.ensuring(effect, Effect.sync(this.release)))
    })
  }

  private pushChunks(chunks: Array<Uint8Array | string>): Effect.Effect<void, Connection.SendError> {
    const [first, second] = chunks
    if (first === undefined) return Effect.void
    if (second === undefined) return this.busy ? this.locked(this.tcp.send(first)) : this.tcp.send(first)
    return this.locked(Effect.andThen(this.tcp.send(first), this.tcp.send(second)))
  }

  /** Send one frame (the payload already compressed if `rsv1`). */
  frame(opcode: number, payload: Uint8Array | string, rsv1 = false): Effect.Effect<void, Connection.SendError> {
    const length = typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength
    return this.pushChunks(Frame.encode(opcode, payload, length, { fin: true, rsv1, mask: this.mask }))
  }

  private closedError(): Connection.SendError {
    return new Connection.SendError({
      connectionId: this.tcp.id,
      peer: this.peer,
      message: "the WebSocket is closing"
    })
  }

  readonly send = (data: Uint8Array | string): Effect.Effect<void, Connection.SendError> =>
    Effect.suspend(() => {
      if (this.closing) return Effect.fail(this.closedError())
      const opcode = typeof data === "string" ? Frame.OP_TEXT : Frame.OP_BINARY
      const deflate = this.deflate
      if (deflate === undefined) return this.frame(opcode, data)
      const bytes = typeof data === "string" ? encoder.encode(data) : data
      if (bytes.byteLength < deflate.threshold) return this.frame(opcode, bytes)
      // compression and queueing under the lock: wire order is compression order (shared LZ77 context)
      return this.locked(
        Effect.flatMap(
          Effect.callback<Uint8Array, Connection.SendError>((resume) => {
            deflate.compress(bytes, (error, payload) =>
              resume(
                error === undefined
                  ? Effect.succeed(payload)
                  : Effect.fail(
                      new Connection.SendError({
                        connectionId: this.tcp.id,
                        peer: this.peer,
                        message: "compression failed",
                        cause: error
                      })
                    )
              )
            )
          }),
          (payload) =>
            this.tcp.send(
              Frame.encode(opcode, payload, payload.byteLength, { fin: true, rsv1: true, mask: this.mask })[0] ?? EMPTY
            )
        )
      )
    })

  readonly ping = (payload?: Uint8Array | string): Effect.Effect<void, Connection.SendError> =>
    Effect.suspend(() => {
      const bytes = payload === undefined ? EMPTY : typeof payload === "string" ? encoder.encode(payload) : payload
      if (bytes.byteLength > 125) return Effect.die(new RangeError("a ping payload is at most 125 bytes"))
      return this.frame(Frame.OP_PING, bytes)
    })

  /** Answer the last ping, if one is due. */
  readonly sendPong: Effect.Effect<void> = Effect.suspend(() => {
    const payload = this.pongDue
    if (payload === undefined || this.closing) return Effect.void
    this.pongDue = undefined
    return Effect.ignore(this.frame(Frame.OP_PONG, payload))
  })

  // --- receive ---------------------------------------------------------------------------------------

  private readonly awaitInflated = Effect.callback<void>((resume) => {
    if (!this.reader.inflating) return resume(Effect.void)
    this.reader.onInflated = () => resume(Effect.void)
    return Effect.sync(() => {
      this.reader.onInflated = undefined
    })
  })

  /** Wait for more input: a running inflation, or the TCP input (after answering a ping). */
  readonly fill: Effect.Effect<void, Connection.InputEnded> = Effect.suspend(() => {
    if (this.reader.inflating) return this.awaitInflated
    if (this.pongDue !== undefined) return Effect.andThen(this.sendPong, this.tcp.input.fill)
    return this.tcp.input.fill
  })

  /** The next message: poll, answer a due ping, wait when needed. */
  readonly receive: Effect.Effect<string | Uint8Array, WebSocketError | WebSocketClosedError> = Effect.suspend(
    (): Effect.Effect<string | Uint8Array, WebSocketError | WebSocketClosedError> => {
      const exit = this.toExit(this.poll())
      if (exit !== undefined) return this.pongDue === undefined ? exit : Effect.andThen(this.sendPong, exit)
      return Effect.matchEffect(this.fill, {
        onSuccess: () => this.receive,
        onFailure: () => Effect.fail(this.inputEnded())
      })
    }
  )

  // --- close -----------------------------------------------------------------------------------------

  private closeFrame(code: number, reason: string): Effect.Effect<void> {
    if (code === 1005 || code === 1006) return Effect.ignore(this.frame(Frame.OP_CLOSE, EMPTY))
    const text = encoder.encode(reason)
    const payload = new Uint8Array(2 + Math.min(text.byteLength, 123))
    payload[0] = code >>> 8
    payload[1] = code & 0xff
    payload.set(text.subarray(0, 123), 2)
    return Effect.ignore(this.frame(Frame.OP_CLOSE, payload))
  }

  /** Read and discard until the peer's close frame (or a violation, or the end of input). */
  private readonly awaitPeerClose: Effect.Effect<void> = Effect.suspend((): Effect.Effect<void> => {
    for (;;) {
      if (this.peerClosed !== undefined || this.violation !== undefined) return Effect.void
      const next = this.poll()
      if (next === undefined) break
      if (next instanceof Reader.Closed) this.peerClosed = next
      else if (next instanceof Frame.Violation) this.violation = next
    }
    return Effect.matchEffect(this.fill, { onSuccess: () => this.awaitPeerClose, onFailure: () => Effect.void })
  })

  /** Wait until the server closes the TCP connection (a client's last step). */
  private readonly awaitEnd: Effect.Effect<void> = Effect.suspend(
    (): Effect.Effect<void> =>
      Effect.matchEffect(this.tcp.input.fill, {
        onSuccess: () => {
          // discard what the server sends after its close frame
          this.tcp.input.buffer.takeAll()
          return this.awaitEnd
        },
        onFailure: () => Effect.void
      })
  )

  /**
   * The close handshake: send a close frame (the echo of the peer's, or `code`), wait for the peer's
   * (within `closeTimeout`), then close TCP (a server at once; a client once the server has closed).
   * After a violation or a dead peer the connection is failed: close frame, then close.
   */
  readonly closeWith = (code: number, reason = ""): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (this.closing) return Effect.void
      this.closing = true
      if (this.deadPeer || this.tcp.isClosed()) return this.tcp.abort
      const violation = this.violation
      const echo = this.peerClosed
      const sent =
        violation !== undefined
          ? this.closeFrame(violation.code, "")
          : echo !== undefined
            ? this.closeFrame(echo.code, "")
            : this.closeFrame(code, reason)
      if (violation !== undefined) return Effect.andThen(sent, this.tcp.close)
      const handshake = Effect.andThen(
        echo === undefined ? this.awaitPeerClose : Effect.void,
        this.role === "client" ? this.awaitEnd : Effect.void
      )
      return sent.pipe(
        Effect.andThen(Effect.timeoutOrElse(handshake, { duration: this.closeTimeout, orElse: () => Effect.void })),
        Effect.andThen(this.tcp.close),
        Effect.ensuring(Effect.sync(() => this.deflate?.close()))
      )
    })

  // --- keep-alive ------------------------------------------------------------------------------------

  /**
   * Ping every `interval`; when no byte has arrived within `timeout` of a ping, the peer is dead: the
   * connection is aborted and receives fail with `PeerTimeout`. Bytes left unread in the buffers count
   * as a sign of life (the conversation is just not reading).
   */
  keepAlive(interval: Duration.Input, timeout: Duration.Input): Effect.Effect<void> {
    const wait = Duration.fromInputUnsafe(timeout)
    const self = this
    const tick: Effect.Effect<boolean> = Effect.gen(function* () {
      yield* Effect.sleep(interval)
      if (self.closing) return false
      const before = self.tcp.bytesIn()
      yield* Effect.ignore(self.ping())
      if (self.tcp.input.buffer.length > 0 || self.reader.buffered > 0) return true
      const start = yield* Clock.currentTimeMillis
      for (;;) {
        if (self.tcp.bytesIn() !== before) return true
        const now = yield* Clock.currentTimeMillis
        const left = Duration.toMillis(wait) - (now - start)
        if (left <= 0) break
        const arrived = yield* Effect.raceFirst(
          Effect.matchEffect(self.tcp.input.fill, {
            onSuccess: () => Effect.succeed(true),
            onFailure: () => Effect.succeed(false)
          }),
          Effect.as(Effect.sleep(left), true)
        )
        if (!arrived) return false
      }
      self.deadPeer = true
      yield* self.tcp.abort
      return false
    })
    return Effect.asVoid(Effect.repeat(tick, { while: (alive) => alive }))
  }
}

/** The `Connection` of a WebSocket, with its state. @internal */
export const make = (options: {
  readonly tcp: TCPConnection.TCPConnection
  readonly role: "client" | "server"
  readonly protocol: string | undefined
  readonly extensions: string
  readonly request: Request
  readonly deflate: Deflate.PerMessageDeflate | undefined
  readonly limits: LimitOptions
}): WebSocketConnection => {
  const state = new State(options.tcp, options.role, options.deflate, options.limits)
  return {
    id: Connection.allocateId(),
    transport: "websocket",
    role: options.role,
    protocol: options.protocol,
    extensions: options.extensions,
    request: options.request,
    tcp: options.tcp,
    localAddress: options.tcp.localAddress,
    remoteAddress: options.tcp.remoteAddress,
    // byte receive operations do not apply to a WebSocket: their buffer stays empty (use WebSocket.message);
    // `fill` is what `Event.first` waits on while the message operation is not satisfied
    input: { _tag: "ByteInput", buffer: ByteBuffer.make(), fill: state.fill },
    send: state.send,
    close: state.closeWith(1000),
    ping: state.ping,
    closeWith: state.closeWith,
    [StateId]: state
  }
}

/** The state of a connection, when it is a WebSocket. @internal */
export const isWebSocket = (connection: Connection.Connection): connection is WebSocketConnection =>
  StateId in connection

/** The state of a connection, when it is a WebSocket. @internal */
export const stateOf = (connection: Connection.Connection): State | undefined =>
  isWebSocket(connection) ? connection[StateId] : undefined
