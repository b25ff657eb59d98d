/**
 * A real `redis-server` (Debian package `redis-server`) for tests: a direct child process on a free
 * loopback port, ready when it answers PING with +PONG, stopped with SIGTERM and awaited. It can be
 * stopped and started again on the same port (reconnection tests).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"

export class RedisServerError extends Data.TaggedError("RedisServerError")<{ readonly message: string }> {}

export interface RedisServerService {
  readonly host: string
  readonly port: number
  readonly url: string
  /** Stop the server (SIGTERM) and wait for the process to exit. */
  readonly stop: Effect.Effect<void>
  /** Start it again on the same port and wait until it answers. */
  readonly start: Effect.Effect<void, RedisServerError>
}

export class RedisServer extends Context.Service<RedisServer, RedisServerService>()("test/RedisServer") {}

export const freePort = Effect.callback<number, RedisServerError>((resume) => {
  const server = Net.createServer()
  server.once("error", (e) => resume(Effect.fail(new RedisServerError({ message: String(e) }))))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** One PING over a fresh socket: succeeds on +PONG. */
export const ping = (port: number) =>
  Effect.callback<void, RedisServerError>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    let data = ""
    const fail = (message: string) => {
      socket.destroy()
      resume(Effect.fail(new RedisServerError({ message })))
    }
    socket.on("error", (e) => fail(String(e)))
    socket.on("connect", () => socket.write("PING\r\n"))
    socket.on("data", (chunk) => {
      data += chunk.toString("latin1")
      if (data.includes("\r\n")) {
        socket.destroy()
        if (data.startsWith("+PONG")) resume(Effect.void)
        else fail(`unexpected answer ${data}`)
      }
    })
    return Effect.sync(() => socket.destroy())
  })

export const awaitExit = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resume(Effect.void)
      return
    }
    child.once("exit", () => resume(Effect.void))
  })

export const make = (
  extraArgs: ReadonlyArray<string> = []
): Effect.Effect<RedisServerService, RedisServerError, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = mkdtempSync(join(tmpdir(), "diesel-redis-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    let child: ChildProcess | undefined
    let port = 0

    const launch = Effect.gen(function* () {
      const proc = spawn(
        "redis-server",
        [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--save",
          "",
          "--appendonly",
          "no",
          "--dir",
          dir,
          "--hz",
          "100",
          ...extraArgs
        ],
        { stdio: ["ignore", "ignore", "pipe"] }
      )
      child = proc
      proc.stderr?.resume()
      const exited = awaitExit(proc).pipe(
        Effect.andThen(Effect.fail(new RedisServerError({ message: `redis-server exited (port ${port})` })))
      )
      yield* Effect.raceFirst(
        ping(port).pipe(Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 1000 })))),
        exited
      )
    })

    const stop = Effect.suspend(() => {
      const proc = child
      child = undefined
      if (proc === undefined) return Effect.void
      proc.kill("SIGTERM")
      return awaitExit(proc)
    })

    // A port found free may be taken before redis binds it: try a few.
    yield* Effect.gen(function* () {
      port = yield* freePort
      yield* launch
    }).pipe(
      Effect.tapError(() => stop),
      Effect.retry({ times: 4 })
    )
    yield* Effect.addFinalizer(() => stop)

    return {
      host: "127.0.0.1",
      get port() {
        return port
      },
      get url() {
        return `redis://127.0.0.1:${port}`
      },
      stop,
      start: Effect.suspend(() => (child === undefined ? launch : Effect.void)).pipe(
        Effect.tapError(() => stop),
        Effect.retry({ times: 20, schedule: Schedule.spaced("20 millis") })
      )
    }
  })

export const layer = (extraArgs: ReadonlyArray<string> = []): Layer.Layer<RedisServer, RedisServerError> =>
  Layer.effect(RedisServer, make(extraArgs))
