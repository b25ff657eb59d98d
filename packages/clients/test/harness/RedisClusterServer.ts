/**
 * A real Redis Cluster for tests: six `redis-server --cluster-enabled yes` processes (direct children, free
 * loopback ports, configs in a temporary directory), joined by `redis-cli --cluster create --cluster-replicas 1`
 * into three masters with a replica each. Ready when every node says `cluster_state:ok` and knows the five
 * others, and every replica's link to its master is up. Stopped (SIGTERM, awaited) when the scope closes.
 *
 * The nodes run with `cluster-replica-no-failover yes`, so a replica is promoted only when a test asks for it
 * (`CLUSTER FAILOVER`), never because a loaded machine was slow to answer a ping; and with
 * `cluster-require-full-coverage no`, so a stopped master leaves the other slots served.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { awaitExit, freePort, ping, RedisServerError } from "./RedisServer.js"

/** One process of the cluster. */
export interface ClusterNode {
  readonly port: number
  /** Kill with a signal (SIGKILL: a crash; SIGSTOP: unreachable but connected) and, for SIGKILL/SIGTERM, await the exit. */
  readonly kill: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** Start again (same port, same nodes.conf: it rejoins the cluster) and wait until it answers. */
  readonly start: Effect.Effect<void, RedisServerError>
}

/** A master as the cluster reports it. */
export interface Shard {
  readonly port: number
  readonly id: string
  readonly slots: ReadonlyArray<readonly [number, number]>
  readonly replicas: ReadonlyArray<number>
}

export interface RedisClusterServerService {
  readonly nodes: ReadonlyArray<ClusterNode>
  readonly seeds: ReadonlyArray<{ readonly host: string; readonly port: number }>
  /** Run `redis-cli -p port args...` and return its output (raw, `--no-raw` off). */
  readonly cli: (port: number, ...args: ReadonlyArray<string | number>) => Effect.Effect<string, RedisServerError>
  /** The masters and their slots, as `port` sees them (CLUSTER SHARDS). */
  readonly shards: (port?: number) => Effect.Effect<ReadonlyArray<Shard>, RedisServerError>
  /** Wait until every running node says `cluster_state:ok`, agrees on the masters, and every replica link is up. */
  readonly awaitHealthy: Effect.Effect<void, RedisServerError>
  readonly node: (port: number) => ClusterNode
}

export class RedisClusterServer extends Context.Service<RedisClusterServer, RedisClusterServerService>()(
  "test/RedisClusterServer"
) {}

/** Run a command-line tool; its stdout, or a failure with its stderr. */
export const run = (command: string, args: ReadonlyArray<string>): Effect.Effect<string, RedisServerError> =>
  Effect.callback<string, RedisServerError>((resume) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString("utf8")
    })
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString("utf8")
    })
    child.on("error", (e) => resume(Effect.fail(new RedisServerError({ message: `${command}: ${String(e)}` }))))
    child.on("close", (code) => {
      if (code === 0) resume(Effect.succeed(out))
      else
        resume(
          Effect.fail(new RedisServerError({ message: `${command} ${args.join(" ")}: exit ${code}: ${err}${out}` }))
        )
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

export const cli = (port: number, ...args: ReadonlyArray<string | number>) =>
  run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args.map(String)])

/** Distinct free ports (a port found free may be handed out twice in a row). */
export const freePorts = (n: number): Effect.Effect<Array<number>, RedisServerError> =>
  Effect.gen(function* () {
    const ports = new Set<number>()
    while (ports.size < n) ports.add(yield* freePort)
    return [...ports]
  })

const parseShards = (text: string): Array<Shard> => {
  // redis-cli prints nested arrays one item a line; CLUSTER SHARDS alternates names and values.
  const lines = text.split("\n").map((l) => l.trim())
  const shards: Array<Shard> = []
  let i = 0
  while (i < lines.length) {
    if (lines[i] !== "slots") {
      i++
      continue
    }
    i++
    const slots: Array<[number, number]> = []
    while (i < lines.length && lines[i] !== "nodes") {
      const a = Number(lines[i])
      const b = Number(lines[i + 1])
      slots.push([a, b])
      i += 2
    }
    i++
    const nodes: Array<{ port: number; id: string; role: string; health: string }> = []
    let current: Record<string, string> = {}
    while (i < lines.length && lines[i] !== "slots") {
      const name = lines[i] ?? ""
      const value = lines[i + 1] ?? ""
      if (name === "id" && current.id !== undefined) {
        nodes.push({
          port: Number(current.port),
          id: current.id,
          role: current.role ?? "",
          health: current.health ?? ""
        })
        current = {}
      }
      current[name] = value
      i += 2
    }
    if (current.id !== undefined) {
      nodes.push({ port: Number(current.port), id: current.id, role: current.role ?? "", health: current.health ?? "" })
    }
    const master = nodes.find((n) => n.role === "master")
    if (master === undefined || slots.length === 0) continue
    shards.push({
      port: master.port,
      id: master.id,
      slots,
      replicas: nodes.filter((n) => n.role === "replica" && n.health === "online").map((n) => n.port)
    })
  }
  return shards
}

const retrySchedule = Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 750 }))

export const make: Effect.Effect<RedisClusterServerService, RedisServerError, Scope.Scope> = Effect.gen(function* () {
  const dir = mkdtempSync(join(tmpdir(), "diesel-redis-cluster-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))

  const makeNode = (port: number, busPort: number): ClusterNode & { stop: Effect.Effect<void> } => {
    const nodeDir = join(dir, String(port))
    mkdirSync(nodeDir, { recursive: true })
    let child: ChildProcess | undefined
    const start = Effect.suspend(() => {
      if (child !== undefined) return Effect.void
      const proc = spawn(
        "redis-server",
        [
          "--port",
          String(port),
          "--cluster-port",
          String(busPort),
          "--bind",
          "127.0.0.1",
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          "nodes.conf",
          "--cluster-node-timeout",
          "1000",
          "--cluster-replica-no-failover",
          "yes",
          "--cluster-require-full-coverage",
          "no",
          "--save",
          "",
          "--appendonly",
          "no",
          "--dir",
          nodeDir,
          "--hz",
          "100"
        ],
        { stdio: ["ignore", "ignore", "pipe"] }
      )
      child = proc
      proc.stderr?.resume()
      const exited = awaitExit(proc).pipe(
        Effect.andThen(Effect.fail(new RedisServerError({ message: `redis-server exited (port ${port})` })))
      )
      return Effect.raceFirst(ping(port).pipe(Effect.retry(retrySchedule)), exited)
    })
    const kill = (signal: NodeJS.Signals) =>
      Effect.suspend(() => {
        const proc = child
        if (proc === undefined) return Effect.void
        proc.kill(signal)
        if (signal === "SIGSTOP" || signal === "SIGCONT") return Effect.void
        child = undefined
        return awaitExit(proc)
      })
    return {
      port,
      kill,
      start,
      stop: Effect.suspend(() => {
        const proc = child
        if (proc === undefined) return Effect.void
        child = undefined
        // A stopped process does not act on SIGTERM until it is continued.
        proc.kill("SIGCONT")
        proc.kill("SIGTERM")
        return awaitExit(proc)
      })
    }
  }

  const ports = yield* freePorts(12)
  const nodes = Array.from({ length: 6 }, (_, i) => makeNode(ports[i] ?? 0, ports[i + 6] ?? 0))
  yield* Effect.addFinalizer(() => Effect.forEach(nodes, (n) => n.stop, { concurrency: "unbounded", discard: true }))
  yield* Effect.forEach(nodes, (n) => n.start, { concurrency: "unbounded", discard: true })
  yield* run("redis-cli", [
    "--cluster",
    "create",
    ...nodes.map((n) => `127.0.0.1:${n.port}`),
    "--cluster-replicas",
    "1",
    "--cluster-yes"
  ])

  const shards = (port = nodes[0]?.port ?? 0) => Effect.map(cli(port, "CLUSTER", "SHARDS"), parseShards)

  const awaitHealthy = Effect.gen(function* () {
    const views: Array<string> = []
    for (const node of nodes) {
      const info = yield* cli(node.port, "CLUSTER", "INFO")
      if (!info.includes("cluster_state:ok") || !info.includes("cluster_known_nodes:6")) {
        return yield* Effect.fail(new RedisServerError({ message: `node ${node.port} not ok: ${info}` }))
      }
      const replication = yield* cli(node.port, "INFO", "replication")
      if (replication.includes("role:slave") && !replication.includes("master_link_status:up")) {
        return yield* Effect.fail(new RedisServerError({ message: `replica ${node.port} not in sync` }))
      }
      const view = (yield* shards(node.port))
        .map((s) => `${s.port}:${s.slots.map(([a, b]) => `${a}-${b}`).join(",")}:${s.replicas.length}`)
        .sort()
        .join(" ")
      views.push(view)
    }
    if (new Set(views).size !== 1 || (views[0] ?? "").split(" ").some((s) => !s.endsWith(":1"))) {
      return yield* Effect.fail(new RedisServerError({ message: `nodes disagree: ${views.join(" | ")}` }))
    }
  }).pipe(Effect.retry(retrySchedule))

  yield* awaitHealthy

  const node = (port: number): ClusterNode => {
    const found = nodes.find((n) => n.port === port)
    if (found === undefined) throw new Error(`no cluster node on port ${port}`)
    return found
  }

  return {
    nodes,
    seeds: nodes.map((n) => ({ host: "127.0.0.1", port: n.port })),
    cli,
    shards,
    awaitHealthy,
    node
  }
})

export const layer: Layer.Layer<RedisClusterServer, RedisServerError> = Layer.effect(RedisClusterServer, make)
