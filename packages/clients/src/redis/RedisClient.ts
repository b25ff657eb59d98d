/**
 * The Redis client: an Effect service built by a Layer, over one shared, automatically pipelined
 * connection (with reconnection), plus a small pool of dedicated connections for blocking commands and
 * watched transactions.
 *
 * @example
 * ```ts
 * import { RedisClient } from "@diesel/clients/redis"
 *
 * const program = Effect.gen(function*() {
 *   const redis = yield* RedisClient.RedisClient
 *   yield* redis.set("greeting", "hello")
 *   const value = yield* redis.get("greeting") // "hello"
 *   const [n, m] = yield* redis.pipeline([Commands.incr("a"), Commands.incr("b")])
 * }).pipe(Effect.provide(RedisClient.layer({ url: "redis://127.0.0.1:6379/0" })))
 * ```
 *
 * @since 0.1.0
 */
import type { Network } from "@diesel/core"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Pool from "effect/Pool"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Commands from "./Commands.js"
import * as Driver from "./internal/driver.js"
import * as RedisCommand from "./RedisCommand.js"
import { RedisConnectionError, type RedisError, RedisReplyError, RedisUnexpectedReply } from "./RedisError.js"
import type * as RedisScript from "./RedisScript.js"
import * as Resp from "./Resp.js"

/**
 * How to reach and talk to the server.
 *
 * @since 0.1.0
 */
export interface Options {
  /** `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. Explicit fields win over it. */
  readonly url?: string | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** ACL user name (Redis 6+); with only `password`, the `default` user. */
  readonly username?: string | undefined
  readonly password?: string | Redacted.Redacted<string> | undefined
  /** Database number (SELECT), default 0. */
  readonly database?: number | undefined
  /** TLS: `true` for the defaults (verification on), or options. */
  readonly tls?: boolean | Network.TlsClientOptions | undefined
  /** Fail a connection attempt after this long (default 10 seconds). */
  readonly connectTimeout?: Duration.Input | undefined
  /** Fail a command with `RedisTimeoutError` when its reply takes longer (default: no limit). */
  readonly commandTimeout?: Duration.Input | undefined
  /** `"auto"` (default): RESP3 through HELLO 3 when the server has it, RESP2 otherwise. */
  readonly protocol?: 2 | 3 | "auto" | undefined
  /** CLIENT SETNAME on every connection. */
  readonly clientName?: string | undefined
  /** Backoff between reconnection attempts: exponential from `baseDelay` (100 ms) up to `maxDelay` (2 s), with jitter. */
  readonly reconnect?:
    | { readonly baseDelay?: Duration.Input | undefined; readonly maxDelay?: Duration.Input | undefined }
    | undefined
  /** Commands that may wait while disconnected; more fail with `QueueFull` (default 10,000). */
  readonly maxQueued?: number | undefined
  /** Dedicated connections for blocking commands and watched transactions (default 16). */
  readonly poolSize?: number | undefined
  /** Parser limits (bulk length, aggregate length, depth, line length). */
  readonly limits?: Resp.ParserLimits | undefined
}

/**
 * Something that runs commands: the client, a dedicated connection, a transaction's connection.
 *
 * @since 0.1.0
 */
export interface RedisConnection {
  /** Run a command. */
  readonly execute: <A>(command: RedisCommand.RedisCommand<A>) => Effect.Effect<A, RedisError>
  /** Run any command by name; the reply undecoded. */
  readonly send: (command: string, ...args: ReadonlyArray<Resp.Arg>) => Effect.Effect<Resp.RespValue, RedisError>
  /**
   * Send commands back to back in one write and collect their decoded replies in order. Fails with the
   * first failure (every command has run by then).
   */
  readonly pipeline: <const Cs extends ReadonlyArray<RedisCommand.RedisCommand<unknown>>>(
    commands: Cs
  ) => Effect.Effect<Results<Cs>, RedisError>
}

/**
 * The decoded replies of a list of commands.
 *
 * @since 0.1.0
 */
export type Results<Cs extends ReadonlyArray<RedisCommand.RedisCommand<unknown>>> = {
  -readonly [K in keyof Cs]: RedisCommand.Success<Cs[K]>
}

/**
 * The outcome of a transaction: its replies, or `Aborted` when a watched key changed (EXEC returned nil).
 *
 * @since 0.1.0
 */
export type TransactionResult<A> = { readonly _tag: "Committed"; readonly results: A } | { readonly _tag: "Aborted" }

/**
 * A typed helper per command of {@link Commands}.
 *
 * @since 0.1.0
 */
export type Helpers = {
  readonly [K in keyof typeof Commands]: (
    ...args: Args<(typeof Commands)[K]>
  ) => Effect.Effect<RedisCommand.Success<ReturnType<(typeof Commands)[K]>>, RedisError>
}

/** The parameters of a function, readonly rest parameters included. */
type Args<F> = F extends (...args: infer P extends ReadonlyArray<unknown>) => unknown ? P : never

/**
 * The client.
 *
 * @since 0.1.0
 */
export interface RedisClientService extends RedisConnection, Helpers {
  /**
   * MULTI ... EXEC. The body may read through the connection it is given; the commands it returns are
   * queued and executed atomically. With `watch`, the transaction runs on a dedicated connection that
   * WATCHes the keys first, and the result is `Aborted` when one of them changed before EXEC.
   *
   * @example
   * ```ts
   * const result = yield* redis.transaction((tx) =>
   *   tx.execute(Commands.get("balance")).pipe(
   *     Effect.map((balance) => [Commands.set("balance", Number(balance) - 10), Commands.incr("spent")] as const)
   *   ), { watch: ["balance"] })
   * if (result._tag === "Aborted") // retry
   * ```
   */
  readonly transaction: <const Cs extends ReadonlyArray<RedisCommand.RedisCommand<unknown>>, E = never, R = never>(
    body: (connection: RedisConnection) => Effect.Effect<Cs, E, R>,
    options?: { readonly watch?: ReadonlyArray<string> | undefined }
  ) => Effect.Effect<TransactionResult<Results<Cs>>, E | RedisError, R>
  /** EVALSHA, falling back to EVAL when the server does not have the script. */
  readonly runScript: (
    script: RedisScript.RedisScript,
    keys?: ReadonlyArray<string>,
    args?: ReadonlyArray<Resp.Arg>
  ) => Effect.Effect<Resp.RespValue, RedisError>
  /** A dedicated connection for the scope (for commands that change connection state). */
  readonly dedicated: Effect.Effect<RedisConnection, RedisError, Scope.Scope>
  /** The protocol negotiated on the shared connection (2 or 3). */
  readonly protocol: Effect.Effect<2 | 3>
  /** The server address, `host:port`. */
  readonly address: string
  /** Resolved options, for companions (pub/sub hub, lock) that open connections of their own. */
  readonly driverOptions: Driver.DriverOptions
}

/**
 * The client service.
 *
 * @since 0.1.0
 */
export class RedisClient extends Context.Service<RedisClient, RedisClientService>()(
  "@diesel/clients/redis/RedisClient"
) {}

/**
 * Resolve options (URL, defaults) into what one connection needs.
 *
 * @since 0.1.0
 */
export const resolveOptions = (options: Options): Driver.DriverOptions => {
  let host = "127.0.0.1"
  let port = 6379
  let username: string | undefined
  let password: string | undefined
  let database = 0
  let tls: Network.TlsClientOptions | undefined
  if (options.url !== undefined) {
    const url = new URL(options.url)
    if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
      // Reported by `make` as a ConnectFailed error.
      throw new Error(`unsupported Redis URL scheme ${url.protocol}`)
    }
    if (url.hostname !== "") host = url.hostname.replace(/^\[(.*)\]$/, "$1")
    if (url.port !== "") port = Number(url.port)
    if (url.username !== "") username = decodeURIComponent(url.username)
    if (url.password !== "") password = decodeURIComponent(url.password)
    const db = url.pathname.replace(/^\//, "")
    if (db !== "") database = Number(db)
    if (url.protocol === "rediss:") tls = {}
  }
  if (options.host !== undefined) host = options.host
  if (options.port !== undefined) port = options.port
  if (options.username !== undefined) username = options.username
  if (options.password !== undefined) {
    password = typeof options.password === "string" ? options.password : Redacted.value(options.password)
  }
  if (options.database !== undefined) database = options.database
  if (options.tls !== undefined) tls = options.tls === false ? undefined : options.tls === true ? {} : options.tls
  return {
    host,
    port,
    tls,
    connectTimeout: Duration.fromInputUnsafe(options.connectTimeout ?? "10 seconds"),
    username,
    password,
    database,
    protocol: options.protocol ?? "auto",
    clientName: options.clientName,
    reconnect: true,
    reconnectBaseDelay: Duration.fromInputUnsafe(options.reconnect?.baseDelay ?? "100 millis"),
    reconnectMaxDelay: Duration.fromInputUnsafe(options.reconnect?.maxDelay ?? "2 seconds"),
    maxQueued: options.maxQueued ?? 10_000,
    commandTimeout: options.commandTimeout === undefined ? undefined : Duration.fromInputUnsafe(options.commandTimeout),
    limits: options.limits ?? {}
  }
}

/** Decode the replies of a pipeline. */
const decodeAll = (
  commands: ReadonlyArray<RedisCommand.RedisCommand<unknown>>,
  exits: ReadonlyArray<Exit.Exit<Resp.RespValue, RedisError>>
): Effect.Effect<Array<unknown>, RedisError> => {
  const out: Array<unknown> = new Array(commands.length)
  for (let i = 0; i < commands.length; i++) {
    const exit = exits[i]
    const command = commands[i]
    if (exit === undefined || command === undefined) continue
    if (exit._tag === "Failure") return Effect.failCause(exit.cause)
    const decoded = Driver.decodeReply(command, exit.value)
    if (decoded._tag === "Failure") return Effect.failCause(decoded.cause)
    out[i] = decoded.value
  }
  return Effect.succeed(out)
}

/** A connection over a driver. */
const connectionOf = (driver: Driver.Driver): RedisConnection => {
  const pipeline = <const Cs extends ReadonlyArray<RedisCommand.RedisCommand<unknown>>>(
    commands: Cs
  ): Effect.Effect<Results<Cs>, RedisError> =>
    Effect.flatMap(driver.executeAll(commands), (exits) => decodeAll(commands, exits)) as Effect.Effect<
      Results<Cs>,
      RedisError
    >
  return {
    execute: (command) => driver.execute(command),
    send: (command, ...args) => driver.execute(RedisCommand.raw([command, ...args])),
    pipeline
  }
}

const MULTI = RedisCommand.make(["MULTI"], RedisCommand.ok)
const EXEC = RedisCommand.raw(["EXEC"])

/** MULTI + commands + EXEC, back to back; decode EXEC's array with each command's decoder. */
const runTransaction = <Cs extends ReadonlyArray<RedisCommand.RedisCommand<unknown>>>(
  driver: Driver.Driver,
  commands: Cs
): Effect.Effect<TransactionResult<Results<Cs>>, RedisError> =>
  Effect.flatMap(
    driver.executeAll([MULTI, ...commands, EXEC]),
    (exits): Effect.Effect<TransactionResult<Results<Cs>>, RedisError> => {
      const exec = exits[exits.length - 1]
      if (exec === undefined) return Effect.die(new Error("transaction without EXEC"))
      if (exec._tag === "Failure") {
        // EXECABORT: report the first command that could not be queued.
        for (let i = 0; i < exits.length - 1; i++) {
          const e = exits[i]
          if (e !== undefined && e._tag === "Failure") return Effect.failCause(e.cause)
        }
        return Effect.failCause(exec.cause)
      }
      const reply = exec.value
      if (reply === null) return Effect.succeed({ _tag: "Aborted" } as const)
      if (reply instanceof Resp.RespError) {
        return Effect.fail(new RedisReplyError({ command: "EXEC", code: reply.code, reply: reply.message }))
      }
      if (!Array.isArray(reply)) {
        return Effect.fail(new RedisUnexpectedReply({ command: "EXEC", expected: "an array", reply }))
      }
      const replies = reply as ReadonlyArray<Resp.RespValue>
      return Effect.map(
        decodeAll(
          commands,
          replies.map((r) => Exit.succeed(r))
        ),
        (results) => ({ _tag: "Committed", results: results as Results<Cs> }) as const
      )
    }
  )

/** Methods for every builder of `Commands`. */
const bindHelpers = (execute: RedisConnection["execute"]): Helpers => {
  const helpers: Record<string, (...args: Array<never>) => Effect.Effect<unknown, RedisError>> = {}
  for (const [name, build] of Object.entries(Commands)) {
    if (typeof build !== "function") continue
    const make = build as (...args: Array<never>) => RedisCommand.RedisCommand<unknown>
    helpers[name] = (...args) => execute(make(...args))
  }
  return helpers as unknown as Helpers
}

/**
 * Build a client in the current scope: connects the shared connection (failing if the first attempt
 * fails) and prepares the pool of dedicated connections (opened on demand).
 *
 * @since 0.1.0
 */
export const make = Effect.fn("RedisClient.make")(function* (options: Options) {
  const resolved = yield* Effect.try({
    try: () => resolveOptions(options),
    catch: (cause) => new RedisConnectionError({ reason: "ConnectFailed", address: options.url ?? "", cause })
  })
  const shared = yield* Driver.make(resolved)
  const dedicatedOptions: Driver.DriverOptions = { ...resolved, reconnect: false }
  const pool = yield* Pool.makeWithTTL({
    acquire: Driver.make(dedicatedOptions),
    min: 0,
    max: options.poolSize ?? 16,
    timeToLive: "30 seconds"
  })

  /** Borrow a live pooled driver for the scope. */
  const borrow: Effect.Effect<Driver.Driver, RedisError, Scope.Scope> = Effect.gen(function* () {
    for (let attempt = 0; attempt < 3; attempt++) {
      const driver = yield* Pool.get(pool)
      if (!driver.isClosed) return driver
      yield* Pool.invalidate(pool, driver)
    }
    return yield* Pool.get(pool)
  })

  /** Run on a pooled driver; the connection is dropped if the run was interrupted or the connection failed. */
  const onDedicated = <A, E, R>(f: (driver: Driver.Driver) => Effect.Effect<A, E, R>) =>
    Effect.scoped(
      Effect.flatMap(borrow, (driver) =>
        f(driver).pipe(
          Effect.onExit((exit) =>
            Exit.isSuccess(exit) && !driver.isClosed
              ? Effect.void
              : Exit.isFailure(exit) && isReplyOnly(exit)
                ? Effect.void
                : Pool.invalidate(pool, driver)
          )
        )
      )
    )

  const sharedConnection = connectionOf(shared)
  const execute = <A>(command: RedisCommand.RedisCommand<A>): Effect.Effect<A, RedisError> =>
    command.blocking ? onDedicated((driver) => driver.execute(command)) : shared.execute(command)

  const transaction = <const Cs extends ReadonlyArray<RedisCommand.RedisCommand<unknown>>, E = never, R = never>(
    body: (connection: RedisConnection) => Effect.Effect<Cs, E, R>,
    options?: { readonly watch?: ReadonlyArray<string> | undefined }
  ): Effect.Effect<TransactionResult<Results<Cs>>, E | RedisError, R> => {
    const watch = options?.watch ?? []
    if (watch.length === 0) {
      return Effect.flatMap(body(sharedConnection), (commands) => runTransaction(shared, commands))
    }
    return onDedicated((driver) =>
      Effect.gen(function* () {
        yield* driver.execute(RedisCommand.make(["WATCH", ...watch], RedisCommand.ok))
        const commands = yield* body(connectionOf(driver)).pipe(
          Effect.onError(() => Effect.ignore(driver.execute(RedisCommand.make(["UNWATCH"], RedisCommand.ok))))
        )
        return yield* runTransaction(driver, commands)
      })
    )
  }

  const runScript = (
    script: RedisScript.RedisScript,
    keys: ReadonlyArray<string> = [],
    args: ReadonlyArray<Resp.Arg> = []
  ): Effect.Effect<Resp.RespValue, RedisError> =>
    shared.execute(Commands.evalsha(script.sha, keys, args)).pipe(
      Effect.catchIf(
        (error): error is RedisReplyError => error._tag === "RedisReplyError" && error.code === "NOSCRIPT",
        () => shared.execute(Commands.evalScript(script.source, keys, args))
      )
    )

  const dedicated: Effect.Effect<RedisConnection, RedisError, Scope.Scope> = Effect.gen(function* () {
    const driver = yield* borrow
    yield* Effect.addFinalizer((exit) =>
      Exit.isSuccess(exit) && !driver.isClosed ? Effect.void : Pool.invalidate(pool, driver)
    )
    return connectionOf(driver)
  })

  const service: RedisClientService = {
    ...bindHelpers(execute),
    execute,
    send: sharedConnection.send,
    pipeline: sharedConnection.pipeline,
    transaction,
    runScript,
    dedicated,
    protocol: Effect.sync(() => shared.protocol),
    address: shared.address,
    driverOptions: resolved
  }
  return service
})

/** A failure that left the connection usable (an error reply, a decode error). */
const isReplyOnly = (exit: Exit.Exit<unknown, unknown>): boolean => {
  if (Exit.isSuccess(exit)) return true
  const error = Exit.findErrorOption(exit)
  if (error._tag === "None") return false
  const e = error.value
  return e instanceof RedisReplyError || e instanceof RedisUnexpectedReply
}

/**
 * The client as a Layer.
 *
 * @example
 * ```ts
 * const RedisLive = RedisClient.layer({ host: "127.0.0.1", port: 6379, database: 1 })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<RedisClient, RedisError> =>
  Layer.effect(RedisClient, make(options))
