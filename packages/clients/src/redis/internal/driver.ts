/**
 * One Redis connection, kept alive: connect, handshake, a writer that sends every command queued in the
 * same tick as one write, a reader that parses replies and completes a FIFO of pending commands, and
 * reconnection with backoff and jitter.
 *
 * Guarantees:
 * - a command is written at most once: commands in flight when the connection dies fail with
 *   `ConnectionLost`; commands not yet written wait for the next connection (bounded queue);
 * - a command whose caller left before it was written (a `RedisTimeoutError`, an interruption) is taken out
 *   of the queue and never written: a retry by the caller then runs it once, not twice;
 * - connecting and the handshake (HELLO, AUTH, SELECT) share one deadline, `connectTimeout`: a server that
 *   accepts and never answers fails the attempt, and the reconnection loop tries again;
 * - bad bytes from the server fail the commands in flight with a `RedisProtocolError` and reset the
 *   connection.
 */
import type { Connection, Network } from "@diesel/core"
import { TCPClient, type TCPConnection } from "@diesel/tcp"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import * as RedisCommand from "../RedisCommand.js"
import {
  RedisConnectionError,
  type RedisError,
  RedisProtocolError,
  RedisReplyError,
  RedisTimeoutError,
  RedisUnexpectedReply
} from "../RedisError.js"
import * as Resp from "../Resp.js"
import { Deque } from "./deque.js"

/** Fully resolved options of one connection. */
export interface DriverOptions {
  readonly host: string
  readonly port: number
  readonly tls: Network.TlsClientOptions | undefined
  readonly connectTimeout: Duration.Duration
  readonly username: string | undefined
  readonly password: string | undefined
  readonly database: number
  readonly protocol: 2 | 3 | "auto"
  readonly clientName: string | undefined
  /** Reconnect after a loss (the shared connection); `false` for pooled and dedicated connections. */
  readonly reconnect: boolean
  readonly reconnectBaseDelay: Duration.Duration
  readonly reconnectMaxDelay: Duration.Duration
  /** Commands that may wait while disconnected. */
  readonly maxQueued: number
  readonly commandTimeout: Duration.Duration | undefined
  readonly limits: Resp.ParserLimits
}

/** A command waiting for its reply. */
export interface Pending {
  readonly command: RedisCommand.RedisCommand<unknown>
  readonly payload: string | ReadonlyArray<string | Uint8Array>
  complete(reply: Resp.RespValue): void
  fail(error: RedisError): void
}

type Resume<A> = (effect: Effect.Effect<A, RedisError>) => void

class Single<A> implements Pending {
  readonly payload: string | ReadonlyArray<string | Uint8Array>
  constructor(
    readonly command: RedisCommand.RedisCommand<A>,
    private readonly resume: Resume<A>
  ) {
    this.payload = Resp.encode(command.args)
  }
  complete(reply: Resp.RespValue): void {
    this.resume(decodeReply(this.command, reply))
  }
  fail(error: RedisError): void {
    this.resume(Exit.fail(error))
  }
}

/** Decode a top-level reply: an error reply fails, a reply of the wrong shape fails. */
export const decodeReply = <A>(
  command: RedisCommand.RedisCommand<A>,
  reply: Resp.RespValue
): Exit.Exit<A, RedisError> => {
  if (reply instanceof Resp.RespError) {
    return Exit.fail(
      new RedisReplyError({ command: RedisCommand.nameOf(command.args), code: reply.code, reply: reply.message })
    )
  }
  try {
    return Exit.succeed(command.decode(reply))
  } catch (error) {
    if (error instanceof RedisUnexpectedReply) return Exit.fail(error)
    return Exit.die(error)
  }
}

/** A group of commands completed together (pipelines, transactions). */
class Batch implements Pending {
  constructor(
    readonly command: RedisCommand.RedisCommand<unknown>,
    private readonly index: number,
    private readonly group: BatchGroup
  ) {
    this.payload = Resp.encode(command.args)
  }
  readonly payload: string | ReadonlyArray<string | Uint8Array>
  complete(reply: Resp.RespValue): void {
    this.group.settle(this.index, Exit.succeed(reply))
  }
  fail(error: RedisError): void {
    this.group.settle(this.index, Exit.fail(error))
  }
}

class BatchGroup {
  remaining: number
  readonly results: Array<Exit.Exit<Resp.RespValue, RedisError>>
  constructor(
    size: number,
    private readonly resume: Resume<ReadonlyArray<Exit.Exit<Resp.RespValue, RedisError>>>
  ) {
    this.remaining = size
    this.results = new Array(size)
  }
  settle(index: number, exit: Exit.Exit<Resp.RespValue, RedisError>): void {
    this.results[index] = exit
    if (--this.remaining === 0) this.resume(Exit.succeed(this.results))
  }
}

const HANDSHAKE_REPLY = (reply: Resp.RespValue): Resp.RespValue => reply

/**
 * The connection driver. Create with {@link make}.
 */
export class Driver {
  readonly address: string
  /** Protocol negotiated on the current (or last) connection. */
  protocol: 2 | 3 = 2
  /** Number of successful connections so far. */
  connections = 0
  private outbox: Array<Pending> = []
  private readonly inflight = new Deque<Pending>()
  /** What the current connection attempt waits for (named in the error when `connectTimeout` elapses). */
  private step = "connect"
  private ready = false
  private closed = false
  private writerWaiter: ((effect: Effect.Effect<void>) => void) | undefined
  /** Called with out-of-band replies (RESP3 pushes; every reply with nothing in flight when set). */
  onPush: ((value: Resp.RespValue) => void) | undefined
  /** Run after each handshake, before queued commands are written (resubscribe, ...). */
  onConnect: ((driver: Driver) => Effect.Effect<void, RedisError>) | undefined

  constructor(readonly options: DriverOptions) {
    this.address = `${options.host}:${options.port}`
  }

  /** Run one command. */
  execute<A>(command: RedisCommand.RedisCommand<A>): Effect.Effect<A, RedisError> {
    const run = Effect.callback<A, RedisError>((resume) => {
      const entry = new Single(command, resume)
      this.enqueue(entry)
      // the caller left (timeout, interruption): if the command is still queued, it is never written
      return Effect.sync(() => this.withdraw(entry))
    })
    return this.options.commandTimeout === undefined ? run : this.withTimeout(run, command)
  }

  /** Run commands back to back (nothing else is interleaved); one exit per command, in order. */
  executeAll(
    commands: ReadonlyArray<RedisCommand.RedisCommand<unknown>>
  ): Effect.Effect<ReadonlyArray<Exit.Exit<Resp.RespValue, RedisError>>, RedisError> {
    if (commands.length === 0) return Effect.succeed([])
    const run = Effect.callback<ReadonlyArray<Exit.Exit<Resp.RespValue, RedisError>>, RedisError>((resume) => {
      const group = new BatchGroup(commands.length, resume)
      const entries = commands.map((command, i) => new Batch(command, i, group))
      this.enqueueAll(entries)
      // a batch is written whole or not at all (the writer takes the outbox in one step)
      return Effect.sync(() => this.withdrawAll(entries))
    })
    return this.options.commandTimeout === undefined ? run : this.withTimeout(run, commands[0] ?? RedisCommand.raw([]))
  }

  /** Send without expecting a reply in the FIFO (SUBSCRIBE and friends: their answers are pushes). */
  sendNoReply(args: ReadonlyArray<Resp.Arg>): Effect.Effect<void, RedisError> {
    return Effect.suspend(() => {
      const connection = this.connection
      if (!this.ready || connection === undefined) {
        return Effect.fail(new RedisConnectionError({ reason: "ConnectionLost", address: this.address }))
      }
      return writePayload(connection, Resp.encode(args)).pipe(
        Effect.mapError((cause) => new RedisConnectionError({ reason: "ConnectionLost", address: this.address, cause }))
      )
    })
  }

  get isReady(): boolean {
    return this.ready
  }

  get isClosed(): boolean {
    return this.closed
  }

  private withTimeout<A>(
    effect: Effect.Effect<A, RedisError>,
    command: RedisCommand.RedisCommand<unknown>
  ): Effect.Effect<A, RedisError> {
    const timeout = this.options.commandTimeout ?? Duration.infinity
    return Effect.timeoutOrElse(effect, {
      duration: timeout,
      orElse: () => Effect.fail(new RedisTimeoutError({ command: RedisCommand.nameOf(command.args), timeout }))
    })
  }

  private reject(entry: Pending): boolean {
    if (this.closed) {
      entry.fail(new RedisConnectionError({ reason: "Closed", address: this.address }))
      return true
    }
    if (!this.ready) {
      if (!this.options.reconnect && this.connections > 0) {
        entry.fail(new RedisConnectionError({ reason: "ConnectionLost", address: this.address }))
        return true
      }
      if (this.outbox.length >= this.options.maxQueued) {
        entry.fail(new RedisConnectionError({ reason: "QueueFull", address: this.address }))
        return true
      }
    }
    return false
  }

  private enqueue(entry: Pending): void {
    if (this.reject(entry)) return
    this.outbox.push(entry)
    this.wakeWriter()
  }

  private enqueueAll(entries: ReadonlyArray<Pending>): void {
    const first = entries[0]
    if (first === undefined) return
    if (this.closed || (!this.ready && this.outbox.length + entries.length > this.options.maxQueued)) {
      for (const entry of entries) this.reject(entry) || this.failQueueFull(entry)
      return
    }
    if (!this.ready && !this.options.reconnect && this.connections > 0) {
      for (const entry of entries) this.reject(entry)
      return
    }
    for (const entry of entries) this.outbox.push(entry)
    this.wakeWriter()
  }

  /** Take a command its caller gave up on out of the queue, if it has not been written yet. */
  private withdraw(entry: Pending): void {
    const index = this.outbox.indexOf(entry)
    if (index >= 0) this.outbox.splice(index, 1)
  }

  private withdrawAll(entries: ReadonlyArray<Pending>): void {
    const first = entries[0]
    if (first === undefined || !this.outbox.includes(first)) return
    const gone = new Set(entries)
    this.outbox = this.outbox.filter((entry) => !gone.has(entry))
  }

  private failQueueFull(entry: Pending): boolean {
    entry.fail(new RedisConnectionError({ reason: "QueueFull", address: this.address }))
    return true
  }

  private wakeWriter(): void {
    const waiter = this.writerWaiter
    if (waiter !== undefined && this.ready) {
      this.writerWaiter = undefined
      // Resume once the current synchronous run is over (a microtask, not a timer), so that every
      // command issued in it joins the same write.
      queueMicrotask(() => waiter(Effect.void))
    }
  }

  /** The live connection, while `ready`. */
  private connection: TCPConnection.TCPConnection | undefined

  /** Wait until the outbox has something and the connection is ready. */
  private readonly waitForWork = Effect.callback<void>((resume) => {
    if (this.outbox.length > 0 && this.ready) {
      resume(Effect.void)
      return
    }
    this.writerWaiter = resume
  })

  private writeLoop(connection: TCPConnection.TCPConnection): Effect.Effect<never, Connection.SendError> {
    const self = this
    return Effect.gen(function* () {
      while (true) {
        yield* self.waitForWork
        const batch = self.outbox
        if (batch.length === 0) continue
        self.outbox = []
        const chunks: Array<string | Uint8Array> = []
        let text = ""
        for (let i = 0; i < batch.length; i++) {
          const entry = batch[i] as Pending
          self.inflight.push(entry)
          const payload = entry.payload
          if (typeof payload === "string") {
            text += payload
          } else {
            for (const part of payload) {
              if (typeof part === "string") {
                text += part
              } else {
                if (text.length > 0) chunks.push(text)
                text = ""
                chunks.push(part)
              }
            }
          }
        }
        if (text.length > 0) chunks.push(text)
        for (const chunk of chunks) yield* connection.send(chunk)
        // the batch is complete: on the wire now (one write), not after TCPConnection's end-of-tick deferral
        yield* connection.flush
      }
    })
  }

  private readLoop(
    input: Connection.ByteInput,
    parser: Resp.Parser
  ): Effect.Effect<never, Connection.InputEnded | RedisProtocolError> {
    const self = this
    return Effect.gen(function* () {
      while (true) {
        yield* input.fill
        // hand the parser the chunks as they arrived (views, no copy): it joins only what a reply needs
        let chunk = input.buffer.takeAny(Number.MAX_SAFE_INTEGER)
        while (chunk !== undefined) {
          parser.feed(chunk)
          chunk = input.buffer.takeAny(Number.MAX_SAFE_INTEGER)
        }
        const error = self.dispatch(parser)
        if (error !== undefined) return yield* Effect.fail(error)
      }
    })
  }

  /** Hand every complete reply to its command. */
  private dispatch(parser: Resp.Parser): RedisProtocolError | undefined {
    while (true) {
      const head = this.inflight.peek()
      let reply: Resp.RespValue | undefined
      try {
        reply = parser.next(head?.command.binary ?? false)
      } catch (error) {
        if (error instanceof Resp.RespProtocolError) {
          return new RedisProtocolError({ address: this.address, cause: error })
        }
        throw error
      }
      if (reply === undefined) return undefined
      if (reply instanceof Resp.RespPush || (head === undefined && this.onPush !== undefined)) {
        this.onPush?.(reply)
        continue
      }
      if (head === undefined) {
        return new RedisProtocolError({
          address: this.address,
          cause: new Resp.RespProtocolError({ reason: "reply with no command in flight", offset: 0 })
        })
      }
      this.inflight.shift()
      head.complete(reply)
    }
  }

  /** Fail every command in flight. */
  private failInflight(error: RedisError): void {
    let entry = this.inflight.shift()
    while (entry !== undefined) {
      entry.fail(error)
      entry = this.inflight.shift()
    }
  }

  /** Fail every command, in flight or queued, and refuse new ones. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.ready = false
    const error = new RedisConnectionError({ reason: "Closed", address: this.address })
    this.failInflight(error)
    const queued = this.outbox
    this.outbox = []
    for (const entry of queued) entry.fail(error)
    this.writerWaiter = undefined
  }

  /** Write a handshake command directly (bypassing the outbox) and wait for its reply. */
  private handshakeCommand(
    connection: TCPConnection.TCPConnection,
    args: ReadonlyArray<Resp.Arg>
  ): Effect.Effect<Resp.RespValue, RedisError> {
    const self = this
    return Effect.gen(function* () {
      const deferred = Deferred.makeUnsafe<Resp.RespValue, RedisError>()
      const entry = new Single(RedisCommand.make(args, HANDSHAKE_REPLY), (effect) => {
        Deferred.doneUnsafe(deferred, effect)
      })
      self.inflight.push(entry)
      self.step = RedisCommand.nameOf(args)
      yield* writePayload(connection, entry.payload).pipe(
        Effect.mapError((cause) => new RedisConnectionError({ reason: "ConnectFailed", address: self.address, cause }))
      )
      return yield* Deferred.await(deferred)
    })
  }

  private handshake(connection: TCPConnection.TCPConnection): Effect.Effect<void, RedisError> {
    const self = this
    const o = this.options
    return Effect.gen(function* () {
      self.protocol = 2
      let authenticated = false
      if (o.protocol !== 2) {
        const hello: Array<Resp.Arg> = ["HELLO", "3"]
        if (o.password !== undefined) hello.push("AUTH", o.username ?? "default", o.password)
        if (o.clientName !== undefined) hello.push("SETNAME", o.clientName)
        const result = yield* Effect.result(self.handshakeCommand(connection, hello))
        if (result._tag === "Success") {
          self.protocol = 3
          authenticated = true
        } else {
          const error = result.failure
          const unsupported =
            error._tag === "RedisReplyError" &&
            (error.code === "NOPROTO" || (error.code === "ERR" && /unknown command/i.test(error.reply)))
          if (!unsupported || o.protocol === 3) return yield* Effect.fail(error)
        }
      }
      if (!authenticated) {
        if (o.password !== undefined) {
          const args: Array<Resp.Arg> =
            o.username === undefined ? ["AUTH", o.password] : ["AUTH", o.username, o.password]
          yield* self.handshakeCommand(connection, args)
        }
        if (o.clientName !== undefined) yield* self.handshakeCommand(connection, ["CLIENT", "SETNAME", o.clientName])
      }
      if (o.database !== 0) yield* self.handshakeCommand(connection, ["SELECT", o.database])
    })
  }

  /**
   * One connection: connect, handshake, then read and write until the socket fails. Always ends with the
   * reason the connection ended.
   */
  private connectOnce(onReady: Effect.Effect<void>): Effect.Effect<never, RedisError> {
    const self = this
    const o = this.options
    return Effect.scoped(
      Effect.gen(function* () {
        self.step = "connect"
        const attempt = Effect.gen(function* () {
          // TCPClient: names resolve through the Network seam (diesel's resolver when one is provided, the
          // simulation's hosts), each address is tried in turn, and TLS verifies the name
          const connection = yield* TCPClient.connect({
            host: o.host,
            port: o.port,
            timeout: o.connectTimeout,
            tls: o.tls,
            name: "redis"
          }).pipe(
            Effect.mapError(
              (cause) => new RedisConnectionError({ reason: "ConnectFailed", address: self.address, cause })
            )
          )
          const parser = new Resp.Parser(o.limits)
          const readerFiber = yield* Effect.forkScoped(
            self
              .readLoop(connection.input, parser)
              .pipe(
                Effect.mapError((cause) =>
                  cause._tag === "RedisProtocolError"
                    ? cause
                    : new RedisConnectionError({ reason: "ConnectionLost", address: self.address, cause })
                )
              ),
            { startImmediately: true }
          )
          yield* self.handshake(connection).pipe(
            Effect.mapError((error) =>
              error._tag === "RedisConnectionError" && error.reason === "ConnectionLost"
                ? new RedisConnectionError({ reason: "ConnectFailed", address: self.address, cause: error.cause })
                : error
            ),
            Effect.raceFirst(Fiber.join(readerFiber))
          )
          return { connection, readerFiber }
        })
        // One deadline for the TCP (and TLS) connection and the handshake: a server that accepts and never
        // answers HELLO would otherwise hold the attempt (and every reconnection) for good.
        const { connection, readerFiber } = yield* Effect.timeoutOrElse(attempt, {
          duration: o.connectTimeout,
          orElse: () =>
            Effect.fail(
              new RedisConnectionError({
                reason: "ConnectFailed",
                address: self.address,
                cause: new RedisTimeoutError({ command: self.step, timeout: o.connectTimeout })
              })
            )
        })
        self.connection = connection
        self.ready = true
        self.connections++
        if (self.onConnect !== undefined) yield* self.onConnect(self)
        yield* onReady
        return yield* Effect.raceFirst(
          Fiber.join(readerFiber),
          self
            .writeLoop(connection)
            .pipe(
              Effect.mapError(
                (cause) => new RedisConnectionError({ reason: "ConnectionLost", address: self.address, cause })
              )
            )
        )
      })
    ).pipe(
      Effect.onExit(() =>
        Effect.sync(() => {
          self.ready = false
          self.connection = undefined
          self.writerWaiter = undefined
        })
      )
    )
  }

  /** The connection loop: connect, run, and on loss reconnect with backoff (if enabled). */
  run(firstReady: Deferred.Deferred<void, RedisError>): Effect.Effect<void> {
    const self = this
    const o = this.options
    return Effect.gen(function* () {
      let attempt = 0
      while (!self.closed) {
        const exit = yield* Effect.exit(
          self.connectOnce(
            Effect.sync(() => {
              attempt = 0
            }).pipe(Effect.andThen(Deferred.succeed(firstReady, undefined)))
          )
        )
        if (exit._tag === "Success") continue
        const error = Exit.findErrorOption(exit)
        const reason: RedisError =
          error._tag === "Some"
            ? error.value
            : new RedisConnectionError({ reason: "ConnectionLost", address: self.address, cause: exit.cause })
        const lost: RedisError =
          reason._tag === "RedisProtocolError" ||
          (reason._tag === "RedisConnectionError" && reason.reason === "ConnectionLost")
            ? reason
            : new RedisConnectionError({ reason: "ConnectionLost", address: self.address, cause: reason })
        self.failInflight(lost)
        if (!(yield* Deferred.isDone(firstReady))) {
          yield* Deferred.fail(firstReady, reason)
          self.close()
          return
        }
        if (!o.reconnect) {
          self.close()
          return
        }
        const base = Duration.toMillis(o.reconnectBaseDelay)
        const max = Duration.toMillis(o.reconnectMaxDelay)
        const delay = Math.min(max, base * 2 ** Math.min(attempt, 20))
        const jitter = yield* Random.next
        attempt++
        yield* Effect.sleep(Duration.millis(delay * (0.5 + jitter / 2)))
      }
    }).pipe(Effect.ensuring(Effect.sync(() => self.close())))
  }
}

/** Send one encoded command and put it on the wire. */
const writePayload = (
  connection: TCPConnection.TCPConnection,
  payload: string | ReadonlyArray<string | Uint8Array>
): Effect.Effect<void, Connection.SendError> =>
  typeof payload === "string"
    ? Effect.andThen(connection.send(payload), connection.flush)
    : Effect.andThen(
        Effect.forEach(payload, (part) => connection.send(part), { discard: true }),
        connection.flush
      )

/**
 * Start a driver in the current scope and wait for its first connection.
 */
export const make = (
  options: DriverOptions,
  setup?: (driver: Driver) => void
): Effect.Effect<Driver, RedisError, Scope.Scope> =>
  Effect.gen(function* () {
    const driver = new Driver(options)
    setup?.(driver)
    const firstReady = yield* Deferred.make<void, RedisError>()
    yield* Effect.forkScoped(driver.run(firstReady), { startImmediately: true })
    yield* Scope.addFinalizer(
      yield* Effect.scope,
      Effect.sync(() => driver.close())
    )
    yield* Deferred.await(firstReady)
    return driver
  })
