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
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type * as NetAddress from "effect/net/NetAddress"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Scheduler from "effect/Scheduler"
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
  /**
   * Write queued output now instead of at the end of the tick, and wait until the socket took it (or the
   * write failed: the next `send` reports it). For clients that coalesce requests themselves (a pipelining
   * driver writes each batch once) and want it on the wire without the deferral.
   */
  readonly flush: Effect.Effect<void>
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

/**
 * Output is coalesced until the end of the tick; a send that brings the outbox to this size writes it at
 * once and waits for the socket (backpressure).
 *
 * @since 0.1.0
 */
export const CORK_BYTES = 64 * 1024

const MAX_DEFERRALS = 64

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
    // The deferred flush runs as a task of the fiber scheduler in use (on Node, a later macrotask, like
    // setImmediate): a virtual clock that counts the scheduler's tasks then waits for it before moving on.
    const dispatcher = Context.get(context, Scheduler.Scheduler).makeDispatcher()
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
    // The outbox: sends not yet handed to the socket, kept in priority order (stable). It is written in
    // one `writeAll` (one writev) when the conversation waits for input, at the end of the tick, or at
    // once when it holds CORK_BYTES or more.
    let outbox: Array<Uint8Array | string> = []
    let priorities: Array<number> | undefined
    let outboxBytes = 0
    /** Senders waiting until the current outbox has been written (resumed with `true` on success). */
    let batchWaiters: Array<(ok: boolean) => void> = []
    /** A `writeAll` is in progress (waiting for the peer to read). */
    let flushing = false
    const idleWaiters = new Set<() => void>()
    let flushScheduled = false
    let sentBytes = 0
    let background: Fiber.Fiber<void> | undefined

    metrics.opened()
    yield* Scope.addFinalizer(
      scope,
      Effect.sync(() => {
        released = true
        closedLocally = true
        writeClosed = true
        dropOutbox()
        background?.interruptUnsafe()
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

    // runs however the pull ends (bytes, error, interruption): the bytes of a pull that completed are
    // kept even if the fiber is interrupted right after
    const afterPull = (exit: Exit.Exit<Arr.NonEmptyReadonlyArray<Uint8Array | string>, Socket.SocketError>) => {
      pulling = false
      if (Exit.isSuccess(exit)) onChunks(exit.value)
      else {
        const error = Cause.findError(exit.cause)
        if (Result.isSuccess(error)) ended ??= toEnded(error.success)
      }
      wakePullWaiters()
      return Effect.void
    }

    const pullEnded = Effect.suspend(() => Effect.fail(ended ?? new Connection.InputEnded({ reason: "closed" })))

    const pull: Effect.Effect<void, Connection.InputEnded> = Effect.matchEffect(Effect.onExit(reader.pull, afterPull), {
      onSuccess: () => Effect.void,
      onFailure: () => pullEnded
    })

    /** Another fiber is pulling: wait until its pull ends (with bytes, an error, or an interruption). */
    const awaitPull = Effect.callback<void>((resume) => {
      const wake = () => resume(Effect.void)
      pullWaiters.add(wake)
      return Effect.sync(() => {
        pullWaiters.delete(wake)
      })
    })

    const fill: Effect.Effect<void, Connection.InputEnded> = Effect.suspend(
      (): Effect.Effect<void, Connection.InputEnded> => {
        if (ended !== undefined) return Effect.fail(ended)
        if (closedLocally) {
          ended = new Connection.InputEnded({ reason: "closed" })
          return Effect.fail(ended)
        }
        if (pulling) return awaitPull
        // about to wait for the peer: write what this conversation has sent so far first
        if (outbox.length > 0 && !flushing) return writeOutbox(fill)
        pulling = true
        return pull
      }
    )

    // --- send ----------------------------------------------------------------------------------------
    const sendError = (message: string, cause?: unknown) =>
      new Connection.SendError({ connectionId: id, peer, message, cause })

    const wakeIdle = () => {
      if (idleWaiters.size === 0) return
      const woken = [...idleWaiters]
      idleWaiters.clear()
      for (const wake of woken) wake()
    }

    /** Forget unsent output (abort, or the socket is gone) and fail its senders. */
    function dropOutbox() {
      const waiters = batchWaiters
      outbox = []
      priorities = undefined
      outboxBytes = 0
      batchWaiters = []
      for (const resume of waiters) resume(false)
    }

    const push = (data: Uint8Array | string, priority: number, size: number) => {
      outboxBytes += size
      if (priorities === undefined && priority !== DEFAULT_PRIORITY) priorities = outbox.map(() => DEFAULT_PRIORITY)
      if (priorities === undefined) {
        outbox.push(data)
        return
      }
      let i = outbox.length
      while (i > 0 && (priorities[i - 1] ?? DEFAULT_PRIORITY) < priority) i--
      outbox.splice(i, 0, data)
      priorities.splice(i, 0, priority)
    }

    /** Write the current outbox with one `writeAll`, then go on with `next` (whether the write failed or not). */
    const writeOutbox = <A, E>(next: Effect.Effect<A, E>): Effect.Effect<A, E> => {
      const chunks = outbox
      if (!Arr.isReadonlyArrayNonEmpty(chunks)) return next
      const waiters = batchWaiters
      outbox = []
      priorities = undefined
      outboxBytes = 0
      batchWaiters = []
      if (writeClosed) {
        for (const resume of waiters) resume(false)
        return next
      }
      flushing = true
      // a failure is recorded (and reported to the senders waiting for this batch) by the exit handler
      return Effect.matchEffect(
        Effect.onExit(writer.writeAll(chunks), (exit) => {
          flushing = false
          const failed = Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)
          if (failed) {
            writeError = exit.cause
            writeClosed = true
          }
          for (const resume of waiters) resume(!failed)
          if (failed) dropOutbox()
          else if (outbox.length > 0 && Exit.isFailure(exit)) schedule()
          wakeIdle()
          return Effect.void
        }),
        { onSuccess: () => next, onFailure: () => next }
      )
    }

    const flushOnce: Effect.Effect<void> = Effect.suspend(() => writeOutbox(Effect.void))

    const awaitIdle = Effect.callback<void>((resume) => {
      const wake = () => resume(Effect.void)
      idleWaiters.add(wake)
      return Effect.sync(() => {
        idleWaiters.delete(wake)
      })
    })

    /** Write everything in the outbox, waiting for another fiber's write first if one is in progress. */
    const flush: Effect.Effect<void> = Effect.suspend(() => {
      if (flushing) return Effect.andThen(awaitIdle, flush)
      if (outbox.length === 0) return Effect.void
      return Effect.andThen(flushOnce, flush)
    })

    // Deferred flush: on a later macrotask (a task of the scheduler's dispatcher). While the conversation
    // keeps sending (a loop that yields to the scheduler between messages), wait for it to reach `fill` or
    // CORK_BYTES, for at most MAX_DEFERRALS turns; a conversation that has stopped sending is flushed on the
    // next turn.
    let deferrals = 0
    let seenBytes = 0
    const runBackground = () => {
      flushScheduled = false
      if (flushing || released || outbox.length === 0) return
      if (sentBytes !== seenBytes && deferrals < MAX_DEFERRALS) {
        seenBytes = sentBytes
        deferrals++
        schedule()
        return
      }
      deferrals = 0
      background = Effect.runForkWith(context)(flush)
    }

    function schedule() {
      if (flushScheduled) return
      flushScheduled = true
      dispatcher.scheduleTask(runBackground, 0)
    }

    const awaitBatch = Effect.callback<void, Connection.SendError>((resume) => {
      let done = false
      const waiter = (ok: boolean) => {
        done = true
        resume(ok ? Effect.void : Effect.fail(sendError("connection closed before the data was written", writeError)))
      }
      batchWaiters.push(waiter)
      return Effect.sync(() => {
        if (done) return
        const index = batchWaiters.indexOf(waiter)
        if (index >= 0) batchWaiters.splice(index, 1)
      })
    })

    const sendWith = (
      data: Uint8Array | string,
      sendOptions?: SendOptions
    ): Effect.Effect<void, Connection.SendError> =>
      Effect.suspend(() => {
        if (writeClosed || closing) return Effect.fail(sendError("connection closed", writeError))
        const size = byteLength(data)
        if (size === 0) return Effect.void
        bytesOut += size
        lastActivity = clock.currentTimeMillisUnsafe()
        metrics.bytesOut(size)
        push(data, sendOptions?.priority ?? DEFAULT_PRIORITY, size)
        sentBytes += size
        // backpressure: while a batch waits for the peer, the next one waits for it
        if (flushing) return awaitBatch
        if (outboxBytes >= CORK_BYTES) return writeOutbox(afterCorkWrite)
        schedule()
        return Effect.void
      })

    const checkWritten = Effect.suspend(() =>
      writeClosed && writeError !== undefined ? Effect.fail(sendError("write failed", writeError)) : Effect.void
    )

    // after a send that filled the outbox was written: write what other fibers queued meanwhile, if any
    const afterCorkWrite = Effect.suspend(() =>
      flushing || outbox.length > 0 ? Effect.andThen(flush, checkWritten) : checkWritten
    )

    const send = (data: Uint8Array | string) => sendWith(data)

    const shutWrite = Effect.suspend(() => {
      if (writeClosed) return Effect.void
      writeClosed = true
      return Scope.close(writerScope, Exit.void)
    })

    let closing = false

    const halfClose: Effect.Effect<void> = Effect.suspend(() => {
      if (closing) return Effect.void
      closing = true
      return Effect.andThen(flush, shutWrite)
    })

    const abort: Effect.Effect<void> = Effect.suspend(() => {
      if (released || aborted) return Effect.void
      aborted = true
      closedLocally = true
      closing = true
      writeClosed = true
      // destroy first: failing the waiting senders resumes their fibers, which may end the conversation
      // and release the socket synchronously
      return Effect.ignore(writer.write(new Socket.CloseEvent(1000))).pipe(Effect.andThen(Effect.sync(dropOutbox)))
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
        // what was sent before the upgrade goes out in clear first
        const upgraded = Effect.mapError(
          Effect.andThen(
            flush,
            reader.upgrade({
              ...(servername === undefined || options.role === "server" ? {} : { servername }),
              ...(o.key === undefined ? {} : { key: Redacted.make(o.key) }),
              ...(o.cert === undefined ? {} : { cert: o.cert }),
              ...(o.ca === undefined ? {} : { ca: toBuffers(o.ca) }),
              ...(o.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: o.rejectUnauthorized }),
              ...(o.requestCert === undefined ? {} : { requestCert: o.requestCert }),
              ...(o.alpnProtocols === undefined ? {} : { alpnProtocols: o.alpnProtocols })
            })
          ),
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
      flush,
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
