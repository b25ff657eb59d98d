/**
 * MongoDB's wire-protocol test server MockupDB (Debian `python3-mockupdb`, run with Debian's
 * `/usr/bin/python3`) for tests: a direct child on a free loopback port, running `mockupdb_server.py`
 * next to this file. It answers the `hello` handshake and scripted replies, and prints every command it
 * receives as canonical extended JSON, so a test can run an operation through the official `mongodb`
 * driver and through ours and compare what the server got.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Net from "node:net"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"

export class MockupDbError extends Data.TaggedError("MockupDbError")<{ readonly message: string }> {}

/** One request as MockupDB saw it. */
export interface Received {
  /** The command document, canonical extended JSON (document sequences merged in, as MockupDB does). */
  readonly command: Record<string, unknown>
  readonly db: string | null
  readonly flags: number
  readonly op: "msg" | "query"
  /** The client's TCP port (one per connection). */
  readonly client: number
}

export interface MockupDbService {
  readonly host: string
  readonly port: number
  readonly uri: string
  /** Replies for the command `name`, used in order; the last one answers every later request. */
  readonly script: (name: string, replies: ReadonlyArray<Record<string, unknown>>) => Effect.Effect<void>
  readonly reset: Effect.Effect<void>
  /** Every request received since the last `take` (after a round trip, so none is still in the pipe). */
  readonly take: Effect.Effect<ReadonlyArray<Received>>
}

export class MockupDb extends Context.Service<MockupDb, MockupDbService>()("test/MockupDb") {}

const freePort = Effect.callback<number, MockupDbError>((resume) => {
  const server = Net.createServer()
  server.once("error", (e) => resume(Effect.fail(new MockupDbError({ message: String(e) }))))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const awaitExit = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resume(Effect.void)
      return
    }
    child.once("exit", () => resume(Effect.void))
  })

const script = fileURLToPath(new URL("./mockupdb_server.py", import.meta.url))

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const launch = (port: number): Effect.Effect<MockupDbService, MockupDbError, Scope.Scope> =>
  Effect.gen(function* () {
    const child = spawn("/usr/bin/python3", ["-u", script, String(port)], { stdio: ["pipe", "pipe", "pipe"] })
    let stderr = ""
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        child.stdin?.end()
        child.kill("SIGTERM")
        return awaitExit(child)
      })
    )
    const ready = yield* Deferred.make<void, MockupDbError>()
    let received: Array<Received> = []
    const syncs = new Map<number, () => void>()
    const stdout = child.stdout
    if (stdout === null) return yield* Effect.fail(new MockupDbError({ message: "no stdout" }))
    const lines = createInterface({ input: stdout })
    lines.on("line", (line) => {
      const message: unknown = JSON.parse(line)
      if (!isRecord(message)) return
      if (typeof message.port === "number") Deferred.doneUnsafe(ready, Effect.void)
      else if (typeof message.sync === "number") syncs.get(message.sync)?.()
      else if (isRecord(message.command)) {
        received.push({
          command: message.command,
          db: typeof message.db === "string" ? message.db : null,
          flags: typeof message.flags === "number" ? message.flags : 0,
          op: message.op === "query" ? "query" : "msg",
          client: typeof message.client === "number" ? message.client : 0
        })
      }
    })
    child.once("exit", (code) =>
      Deferred.doneUnsafe(
        ready,
        Effect.fail(new MockupDbError({ message: `mockupdb exited (${code}) on port ${port}: ${stderr}` }))
      )
    )
    yield* Deferred.await(ready)
    let nextSync = 0
    const send = (message: unknown) => Effect.sync(() => child.stdin?.write(`${JSON.stringify(message)}\n`))
    const roundTrip = Effect.callback<void>((resume) => {
      const id = nextSync++
      syncs.set(id, () => {
        syncs.delete(id)
        resume(Effect.void)
      })
      child.stdin?.write(`${JSON.stringify({ sync: id })}\n`)
    })
    return {
      host: "127.0.0.1",
      port,
      uri: `mongodb://127.0.0.1:${port}`,
      script: (name, replies) => send({ script: name, replies }).pipe(Effect.andThen(roundTrip)),
      reset: send({ reset: true }).pipe(Effect.andThen(roundTrip)),
      take: roundTrip.pipe(
        Effect.map(() => {
          const out = received
          received = []
          return out
        })
      )
    }
  })

/** Start MockupDB on a free loopback port (a few tries: the port may be taken before Python binds it). */
export const make: Effect.Effect<MockupDbService, MockupDbError, Scope.Scope> = Effect.gen(function* () {
  const port = yield* freePort
  return yield* launch(port)
}).pipe(Effect.retry({ times: 4 }))

export const layer: Layer.Layer<MockupDb, MockupDbError> = Layer.effect(MockupDb, make)
