import { spawn } from "node:child_process"
import * as Dgram from "node:dgram"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { Workers } from "@diesel/core/node"
import { assert, describe, it } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { freePort, request } from "./workers-peers.js"

const entry = fileURLToPath(new URL("./workers.ts", import.meta.url))
const execArgv = ["--import", import.meta.resolve("tsx"), "--conditions=@diesel/source"]

/** A UDP peer (its own socket, so its own 4-tuple) that sends `n` datagrams and returns who answered each. */
const udpPeer = (port: number, n: number) =>
  Effect.callback<Array<string>>((resume) => {
    const socket = Dgram.createSocket("udp4")
    const answers: Array<string> = []
    socket.on("message", (message) => {
      answers.push(message.toString("utf8"))
      if (answers.length === n) socket.close(() => resume(Effect.succeed(answers)))
      else socket.send(`ping ${answers.length}`, port, "127.0.0.1")
    })
    socket.send("ping 0", port, "127.0.0.1")
    return Effect.sync(() => socket.close())
  })

const worker = (answer: string) => answer.split(" ").slice(0, 3).join(" ")

describe("Workers: one application in several processes on the same ports", () => {
  it.live(
    "both workers serve TCP; each UDP peer stays with one worker; views of loops and metrics come from every worker",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const supervisor = yield* Workers.make({ entry, execArgv, count: 2, env: { PORT: String(port) } })
        const workers = yield* supervisor.workers
        assert.deepStrictEqual(
          workers.map((w) => [w.index, w.state]),
          [
            [0, "ready"],
            [1, "ready"]
          ]
        )
        const answers = yield* Effect.forEach(Array.from({ length: 60 }), () => request(port), { concurrency: 6 })
        const pids = new Set(answers.map((a) => a.split(" ")[2]))
        assert.strictEqual(pids.size, 2, "the kernel spread the connections over both workers")

        const peers = yield* Effect.forEach(Array.from({ length: 40 }), () => udpPeer(port, 10), { concurrency: 10 })
        for (const answersOfPeer of peers)
          assert.strictEqual(new Set(answersOfPeer.map(worker)).size, 1, "a peer keeps its worker")
        assert.strictEqual(new Set(peers.map((p) => worker(p[0] ?? ""))).size, 2, "peers are spread over both workers")

        // a connection held open shows in the loop table of the worker that serves it
        const held = yield* Effect.callback<Net.Socket>((resume) => {
          const socket = Net.connect({ host: "127.0.0.1", port }, () => resume(Effect.succeed(socket)))
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => held.destroy()))
        const loops = yield* supervisor.loops.pipe(
          Effect.repeat({
            schedule: Schedule.spaced("10 millis"),
            until: (all) =>
              all.some((l) => l.kind === "conversation" && l.peer?.includes(String(held.localPort)) === true)
          })
        )
        assert.deepStrictEqual(new Set(loops.map((l) => l.worker)), new Set([0, 1]))
        const metrics = yield* supervisor.metrics
        const accepted = metrics.filter((m) => m.id === "diesel_tcp_connections_total")
        assert.deepStrictEqual(new Set(accepted.map((m) => m.attributes?.worker)), new Set(["0", "1"]))
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "a worker that dies is replaced in its slot; the port stays served",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const supervisor = yield* Workers.make({
          entry,
          execArgv,
          count: 2,
          env: { PORT: String(port) },
          backoff: "10 millis"
        })
        const [first] = yield* supervisor.workers
        assert.isDefined(first)
        process.kill(first?.pid ?? 0, "SIGKILL")
        const after = yield* supervisor.workers.pipe(
          Effect.repeat({
            schedule: Schedule.spaced("10 millis"),
            until: (all) => all.some((w) => w.index === 0 && w.generation === 1 && w.state === "ready")
          })
        )
        assert.notStrictEqual(after.find((w) => w.index === 0)?.pid, first?.pid)
        const answers = yield* Effect.forEach(Array.from({ length: 40 }), () => request(port), { concurrency: 4 })
        assert.strictEqual(new Set(answers.map((a) => a.split(" ")[2])).size, 2)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "a worker that dies before it is ready fails the supervisor's start with a typed error",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const started = yield* Effect.result(
          Workers.make({ entry, execArgv, count: 1, env: { PORT: String(port), CRASH: "1" } })
        )
        assert.strictEqual(started._tag, "Failure")
        if (started._tag === "Failure") assert.strictEqual(started.failure.reason, "notReady")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "closing the supervisor's scope drains every worker and leaves no process",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const pids = yield* Effect.scoped(
          Effect.gen(function* () {
            const supervisor = yield* Workers.make({ entry, execArgv, count: 2, env: { PORT: String(port) } })
            yield* request(port)
            return (yield* supervisor.workers).map((w) => w.pid)
          })
        )
        for (const pid of pids) assert.throws(() => process.kill(pid, 0))
        const refused = yield* Effect.result(request(port).pipe(Effect.timeout(Duration.seconds(2))))
        assert.strictEqual(refused._tag, "Failure")
      }),
    60_000
  )
})

/** Runs the rolling-restart scenario in a user and network namespace of its own, with `tcp_migrate_req` set there. */
const rolling = (migrate: 0 | 1) =>
  Effect.callback<{ served: number; failures: Array<string>; generations: Array<number> }, RolloutError>((resume) => {
    const script = fileURLToPath(new URL("./workers-rolling.ts", import.meta.url))
    const command = `ip link set lo up && sysctl -qw net.ipv4.tcp_migrate_req=${migrate} && exec "$0" ${execArgv
      .map((a) => `'${a}'`)
      .join(" ")} '${script}'`
    const child = spawn("unshare", ["-rn", "sh", "-c", command, process.execPath], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    let err = ""
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString("utf8")))
    child.on("exit", (code) => {
      if (code !== 0) return resume(Effect.fail(new RolloutError({ message: `exit ${code}: ${err}` })))
      resume(
        Effect.try({
          try: () => JSON.parse(out.trim().split("\n").at(-1) ?? ""),
          catch: () => new RolloutError({ message: out })
        })
      )
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

class RolloutError extends Data.TaggedError("RolloutError")<{ readonly message: string }> {}

describe("Workers: rolling restart", () => {
  it.live(
    "under steady TCP load, with tcp_migrate_req=1: every worker replaced, no connection refused, no request failed",
    () =>
      Effect.gen(function* () {
        const result = yield* rolling(1)
        assert.deepStrictEqual(result.generations, [1, 1])
        assert.isAbove(result.served, 400)
        assert.deepStrictEqual(result.failures, [])
      }),
    120_000
  )
})
