/**
 * A real HAProxy (Debian package `haproxy`) for tests: a direct child in the foreground (`-db`) with a
 * config written into a fresh temporary directory, listening on a free loopback port, ready when its
 * stats socket answers `show info`, stopped with SIGTERM (hard stop) and awaited.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"

export class HAProxyError extends Data.TaggedError("HAProxyError")<{ readonly message: string }> {}

export interface HAProxy {
  /** The port of the frontend the config's `bind` got. */
  readonly port: number
  /** A command on the runtime API (stats socket), e.g. `"disable server be/s1"`; returns its answer. */
  readonly command: (line: string) => Effect.Effect<string, HAProxyError>
}

export const freePort = Effect.callback<number, HAProxyError>((resume) => {
  const server = Net.createServer()
  server.once("error", (e) => resume(Effect.fail(new HAProxyError({ message: String(e) }))))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const ask = (socketPath: string, line: string) =>
  Effect.callback<string, HAProxyError>((resume) => {
    const socket = Net.connect({ path: socketPath })
    let data = ""
    socket.on("error", (e) => resume(Effect.fail(new HAProxyError({ message: String(e) }))))
    socket.on("connect", () => socket.write(`${line}\n`))
    socket.on("data", (chunk) => (data += chunk.toString("utf8")))
    socket.on("end", () => resume(Effect.succeed(data)))
    return Effect.sync(() => socket.destroy())
  })

const awaitExit = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
  })

/**
 * Starts HAProxy with `config(port)` as the body after a `global`/`defaults` preamble written here (mode
 * tcp, short timeouts, a stats socket). `port` is a free port for the config's frontend `bind`.
 */
export const make = (config: (port: number) => string): Effect.Effect<HAProxy, HAProxyError, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = mkdtempSync(join(tmpdir(), "diesel-haproxy-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const stats = join(dir, "admin.sock")
    let child: ChildProcess | undefined
    const stop = Effect.suspend(() => {
      const proc = child
      child = undefined
      if (proc === undefined) return Effect.void
      proc.kill("SIGTERM")
      return awaitExit(proc)
    })
    yield* Effect.addFinalizer(() => stop)
    const port = yield* Effect.gen(function* () {
      const port = yield* freePort
      const file = join(dir, "haproxy.cfg")
      writeFileSync(
        file,
        [
          "global",
          `  stats socket ${stats} mode 600 level admin`,
          "  log stderr format raw local0 warning",
          "defaults",
          "  mode tcp",
          "  timeout connect 2s",
          "  timeout client 10s",
          "  timeout server 10s",
          config(port),
          ""
        ].join("\n")
      )
      const proc = spawn("haproxy", ["-db", "-f", file], { stdio: ["ignore", "ignore", "pipe"] })
      child = proc
      let stderr = ""
      proc.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
      const exited = awaitExit(proc).pipe(
        Effect.andThen(Effect.suspend(() => Effect.fail(new HAProxyError({ message: `haproxy exited: ${stderr}` }))))
      )
      yield* Effect.raceFirst(
        ask(stats, "show info").pipe(
          Effect.filterOrFail(
            (answer) => answer.includes("Name: HAProxy"),
            (answer) => new HAProxyError({ message: `stats socket answered ${answer}` })
          ),
          Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 1000 })))
        ),
        exited
      )
      return port
    }).pipe(
      Effect.tapError(() => stop),
      Effect.retry({ times: 4 })
    )
    return { port, command: (line) => ask(stats, line) }
  })
