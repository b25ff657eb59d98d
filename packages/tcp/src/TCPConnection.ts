/**
 * A TCP (or TLS) connection as a diesel `Connection`, built over an `effect/socket` `Socket`.
 *
 * - **Receive** is pull-on-demand: `fill` pulls one batch from the socket reader only when a receive
 *   operation needs more bytes, so a conversation that stops reading stops the kernel window and the
 *   peer (end-to-end backpressure, bounded memory). `fill` is serialized (a parent and a child receiving
 *   at once share one pull) and safe to interrupt (the reader keeps the bytes of an interrupted pull).
 * - **Send** writes straight to the socket and waits while the socket's buffer is full (backpressure).
 *   Sends that arrive while a write is waiting are queued by priority (higher first, equal priorities in
 *   order); a message is never split.
 * - **Close** is graceful: queued output is flushed, then the write side is shut (FIN) and the socket
 *   closes once flushed. `halfClose` shuts only the write side and keeps receiving; `abort` closes at once.
 *
 * @since 0.1.0
 */
import { ByteBuffer, Connection } from "@diesel/core"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as NetAddress from "effect/net/NetAddress"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import * as Metrics from "./Metrics.js"
import { UpgradeError } from "./TCPError.js"

/**
 * The default priority of `send` (as in diesel).
 *
 * @since 0.1.0
 */
export const DEFAULT_PRIORITY = 5

/**
 * Options of a single send.
 *
 * @since 0.1.0
 */
export interface SendOptions {
  /**
   * Among sends queued behind a write that waits for the peer, higher priorities are written first and
   * equal priorities in order. Default `DEFAULT_PRIORITY` (5).
   */
  readonly priority?: number | undefined
}

/**
 * TLS options for a STARTTLS upgrade. On a server connection `key` and `cert` are required; on a client
 * connection the certificate is verified (against `ca`, or the system roots) unless `rejectUnauthorized`
 * is `false`, and `servername` (SNI and the name checked) defaults to the host connected to.
 *
 * @since 0.1.0
 */
export interface UpgradeOptions {
  readonly key?: string | Uint8Array | undefined
  readonly cert?: string | Uint8Array | undefined
  readonly ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array> | undefined
  readonly servername?: string | undefined
  readonly rejectUnauthorized?: boolean | undefined
  readonly requestCert?: boolean | undefined
  readonly alpnProtocols?: ReadonlyArray<string> | undefined
  /** Fail with `UpgradeError` when the handshake is not done in time (default 10 s). */
  readonly timeout?: Duration.Input | undefined
}

/**
 * The default STARTTLS handshake timeout.
 *
 * @since 0.1.0
 */
export const DEFAULT_UPGRADE_TIMEOUT: Duration.Duration = Duration.seconds(10)

/**
 * A TCP connection.
 *
 * @since 0.1.0
 */
export interface TCPConnection extends Connection.Connection {
  readonly transport: "tcp"
  readonly role: "server" | "client"
  readonly input: Connection.ByteInput
  /** `send` with options (priority). */
  readonly sendWith: (data: Uint8Array | string, options?: SendOptions) => Effect.Effect<void, Connection.SendError>
  /** Flush queued output, then shut the write side (TCP half-close); receiving goes on. Idempotent. */
  readonly halfClose: Effect.Effect<void>
  /** Close at once, discarding unsent output. Idempotent. */
  readonly abort: Effect.Effect<void>
  /** STARTTLS: upgrade the live connection to TLS. No receive may be in progress. */
  readonly upgrade: (options?: UpgradeOptions) => Effect.Effect<void, UpgradeError>
  /** Bytes received so far. */
  readonly bytesIn: () => number
  /** Bytes handed to the socket so far. */
  readonly bytesOut: () => number
  /** When bytes last arrived or were sent (the connection's `Clock`, in milliseconds). */
  readonly lastActivity: () => number
  /** `true` once `close` or `abort` has run, or the socket has closed. */
  readonly isClosed: () => boolean
}

/**
 * Options of `make`.
 *
 * @since 0.1.0
 */
export interface MakeOptions {
  readonly socket: Socket.Socket
  readonly role: "server" | "client"
  readonly localAddress?: NetAddress.SocketAddress | undefined
  readonly remoteAddress?: NetAddress.SocketAddress | undefined
  /** Default `servername` for a client STARTTLS upgrade (the host connected to). */
  readonly servername?: string | undefined
  /** Metric attributes (see `Metrics`); default: `{ role }`. */
  readonly metrics?: Metrics.Attributes | undefined
}

const encoder = new TextEncoder()

interface Waiter {
  readonly priority: number
  readonly seq: number
  granted: boolean
  resume: (() => void) | undefined
}

const toBuffers = (value: string | Uint8Array | ReadonlyArray<string | Uint8Array>): Array<string | Uint8Array> =>
  typeof value === "string" || value instanceof Uint8Array ? [value] : [...value]

const byteLength = (data: Uint8Array | string): number =>
  typeof data === "string" ? Buffer.byteLength(data) : data.byteLength

/**
 * Open `socket` (acquiring its reader connects a client socket) and make a connection over it. The
 * connection lives until the scope closes; closing the scope closes the socket.
 *
 * @since 0.1.0
 */
export const make: (options: MakeOptions) => Effect.Effect<TCPConnection, Socket.SocketError, Scope.Scope> =
  Effect.fnUntraced(function* (options: MakeOptions) {
    const scope = yield* Effect.scope
    const readerScope = yield* Scope.fork(scope)
    const reader = yield* Scope.provide(options.socket.reader, readerScope)
    const writerScope = yield* Scope.fork(scope)
    const writer = yield* Scope.provide(options.socket.writer, writerScope)
    const context = yield* Effect.context<never>()
    const clock = Context.get(context, Clock.Clock)
    const metrics = Metrics.forConnection(options.metrics ?? { role: options.role }, context)
    const id = Connection.allocateId()
    const peer = Connection.formatAddress(options.remoteAddress)
    // --- state ---------------------------------------------------------------------------------------
    const input = { buffer: ByteBuffer.make() }
    let bytesIn = 0
    let bytesOut = 0
    let lastActivity = clock.currentTimeMillisUnsafe()
    /** Local close requested (`close` or `abort`): the reader's errors then mean "closed". */
    let closedLocally = false
    /** The socket reader is released (scope closed): the writer must not be used any more. */
    let released = false
    /** The write side is shut (half-close, close, abort, or a write failed). */
    let writeClosed = false
    let writeError: unknown
    let aborted = false
    let ended: Connection.InputEnded | undefined
    let pulling = false
    const pullWaiters = new Set<() => void>()
    let writing = false
    let seq = 0
    const queue: Array<Waiter> = []

    metrics.opened()
    yield* Scope.addFinalizer(
      scope,
      Effect.sync(() => {
        released = true
        closedLocally = true
        writeClosed = true
        failQueued()
        metrics.closed()
      })
    )

    // --- receive -------------------------------------------------------------------------------------
    const wakePullWaiters = () => {
      if (pullWaiters.size === 0) return
      const woken = [...pullWaiters]
      pullWaiters.clear()
      for (const wake of woken) wake()
    }

    const toEnded = (error: Socket.SocketError): Connection.InputEnded => {
      if (closedLocally) return new Connection.InputEnded({ reason: "closed", cause: error })
      const reason = error.reason
      return new Connection.InputEnded({
        reason: reason._tag === "SocketCloseError" && reason.code === 1000 ? "eof" : "reset",
        cause: error
      })
    }

    const onChunks = (chunks: ReadonlyArray<Uint8Array | string>): void => {
      let n = 0
      for (const chunk of chunks) {
        const data = typeof chunk === "string" ? encoder.encode(chunk) : chunk
        input.buffer.append(data)
        n += data.byteLength
      }
      bytesIn += n
      lastActivity = clock.currentTimeMillisUnsafe()
      metrics.bytesIn(n)
    }

    const pullDone = Effect.sync(() => {
      pulling = false
      wakePullWaiters()
    })

    const pull: Effect.Effect<void, Connection.InputEnded> = reader.pull.pipe(
      Effect.matchEffect({
        onSuccess: (chunks) => {
          onChunks(chunks)
          return Effect.void
        },
        onFailure: (error) => {
          ended ??= toEnded(error)
          return Effect.fail(ended)
        }
      }),
      Effect.ensuring(pullDone)
    )

    /** Another fiber is pulling: wait until its pull ends (with bytes, an error, or an interruption). */
    const awaitPull = Effect.callback<void>((resume) => {
      const wake = () => resume(Effect.void)
      pullWaiters.add(wake)
      return Effect.sync(() => {
        pullWaiters.delete(wake)
      })
    })

    const fill: Effect.Effect<void, Connection.InputEnded> = Effect.suspend(() => {
      if (ended !== undefined) return Effect.fail(ended)
      if (closedLocally) {
        ended = new Connection.InputEnded({ reason: "closed" })
        return Effect.fail(ended)
      }
      if (pulling) return awaitPull
      pulling = true
      return pull
    })

    // --- send ----------------------------------------------------------------------------------------
    const sendError = (message: string, cause?: unknown) =>
      new Connection.SendError({ connectionId: id, peer, message, cause })

    function failQueued() {
      // Queued senders re-check `writeClosed` when resumed and fail.
      while (queue.length > 0) {
        const next = queue.shift()
        if (next !== undefined) grant(next)
      }
    }

    function grant(waiter: Waiter) {
      waiter.granted = true
      const resume = waiter.resume
      waiter.resume = undefined
      resume?.()
    }

    /** Pass write ownership to the next queued sender, or free it. */
    function release() {
      const next = queue.shift()
      if (next === undefined) writing = false
      else grant(next)
    }

    const enqueue = (priority: number): Waiter => {
      const waiter: Waiter = { priority, seq: seq++, granted: false, resume: undefined }
      // stable: after every waiter of higher or equal priority
      let i = queue.length
      while (i > 0) {
        const before = queue[i - 1]
        if (before === undefined || before.priority >= priority) break
        i--
      }
      queue.splice(i, 0, waiter)
      return waiter
    }

    const awaitTurn = (waiter: Waiter) =>
      Effect.callback<void>((resume) => {
        if (waiter.granted) return resume(Effect.void)
        waiter.resume = () => resume(Effect.void)
        return Effect.sync(() => {
          waiter.resume = undefined
        })
      })

    const write = (data: Uint8Array | string): Effect.Effect<void, Connection.SendError> =>
      Effect.suspend(() => {
        if (writeClosed) return Effect.fail(sendError("connection closed", writeError))
        bytesOut += byteLength(data)
        lastActivity = clock.currentTimeMillisUnsafe()
        metrics.bytesOut(byteLength(data))
        return Effect.mapError(writer.write(data), (error) => {
          writeError = error
          writeClosed = true
          return sendError("write failed", error)
        })
      })

    /** Run `body` holding write ownership, queueing by priority behind the current holder. */
    const withWriteTurn = <A, E>(
      priority: number,
      body: Effect.Effect<A, E>
    ): Effect.Effect<A, E | Connection.SendError> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          if (!writing) {
            writing = true
            return Effect.ensuring(restore(body), Effect.sync(release))
          }
          const waiter = enqueue(priority)
          return restore(awaitTurn(waiter)).pipe(
            Effect.onInterrupt(() =>
              Effect.sync(() => {
                if (waiter.granted) release()
                else {
                  const index = queue.indexOf(waiter)
                  if (index >= 0) queue.splice(index, 1)
                }
              })
            ),
            Effect.flatMap(() => Effect.ensuring(restore(body), Effect.sync(release)))
          )
        })
      )

    const sendWith = (data: Uint8Array | string, sendOptions?: SendOptions) =>
      withWriteTurn(sendOptions?.priority ?? DEFAULT_PRIORITY, write(data))

    const send = (data: Uint8Array | string) => withWriteTurn(DEFAULT_PRIORITY, write(data))

    const shutWrite = Effect.suspend(() => {
      if (writeClosed) return Effect.void
      writeClosed = true
      failQueued()
      return Scope.close(writerScope, Exit.void)
    })

    const halfClose: Effect.Effect<void> = withWriteTurn(Number.NEGATIVE_INFINITY, shutWrite).pipe(Effect.ignore)

    const abort: Effect.Effect<void> = Effect.suspend(() => {
      if (released || aborted) return Effect.void
      aborted = true
      closedLocally = true
      writeClosed = true
      failQueued()
      return Effect.ignore(writer.write(new Socket.CloseEvent(1000)))
    })

    const close: Effect.Effect<void> = Effect.suspend(() => {
      if (closedLocally) return Effect.void
      // a reset or failed socket has nothing to flush: a graceful close could wait forever
      if (ended?.reason === "reset" || writeError !== undefined) return abort
      closedLocally = true
      return Effect.andThen(
        halfClose,
        Effect.suspend(() => {
          if (released) return Effect.void
          released = true
          return Scope.close(readerScope, Exit.void)
        })
      )
    })

    const upgrade = (upgradeOptions?: UpgradeOptions): Effect.Effect<void, UpgradeError> =>
      Effect.suspend(() => {
        const fail = (cause: unknown) => Effect.fail(new UpgradeError({ connectionId: id, peer, cause }))
        if (released || closedLocally || ended !== undefined) return fail(new Error("connection closed"))
        if (pulling) return fail(new Error("a receive is in progress on this connection"))
        const o = upgradeOptions ?? {}
        const servername = o.servername ?? options.servername
        const upgraded = Effect.mapError(
          reader.upgrade({
            ...(servername === undefined || options.role === "server" ? {} : { servername }),
            ...(o.key === undefined ? {} : { key: Redacted.make(o.key) }),
            ...(o.cert === undefined ? {} : { cert: o.cert }),
            ...(o.ca === undefined ? {} : { ca: toBuffers(o.ca) }),
            ...(o.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: o.rejectUnauthorized }),
            ...(o.requestCert === undefined ? {} : { requestCert: o.requestCert }),
            ...(o.alpnProtocols === undefined ? {} : { alpnProtocols: o.alpnProtocols })
          }),
          (error) => new UpgradeError({ connectionId: id, peer, cause: error })
        )
        return Effect.timeoutOrElse(upgraded, {
          duration: o.timeout ?? DEFAULT_UPGRADE_TIMEOUT,
          orElse: () => fail(new Error("TLS handshake timed out"))
        })
      })

    const connection: TCPConnection = {
      id,
      transport: "tcp",
      role: options.role,
      localAddress: options.localAddress,
      remoteAddress: options.remoteAddress,
      input: { _tag: "ByteInput", buffer: input.buffer, fill },
      send,
      sendWith,
      close,
      halfClose,
      abort,
      upgrade,
      bytesIn: () => bytesIn,
      bytesOut: () => bytesOut,
      lastActivity: () => lastActivity,
      isClosed: () => closedLocally || released || ended !== undefined
    }
    return connection
  })
