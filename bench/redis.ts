/**
 * Redis client benchmark: @diesel/clients/redis against ioredis and node-redis (`redis`), side by side in
 * one run, on one redis-server started here (a direct child process on a free loopback port).
 *
 * Cases: PING and GET/SET with 100 callers in flight, explicit pipelines of 100 GETs, and one caller at
 * a time. Rounds alternate between the clients; each row is the median over rounds, in commands/s.
 *
 * Run alone: `pnpm exec tsx --conditions=@diesel/source bench/redis.ts [--smoke]`
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Commands, RedisClient } from "@diesel/clients/redis"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { Redis as IORedis } from "ioredis"
import { createClient } from "redis"
import { isMain, type Row, runAlone } from "./Harness.js"

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const pingOnce = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    socket.on("error", () => resolve(false))
    socket.on("connect", () => socket.write("PING\r\n"))
    socket.on("data", (d) => {
      socket.destroy()
      resolve(d.toString().startsWith("+PONG"))
    })
  })

const startServer = async (): Promise<{ port: number; stop: () => Promise<void> }> => {
  const dir = mkdtempSync(join(tmpdir(), "diesel-bench-redis-"))
  const port = await freePort()
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--hz", "100"],
    { stdio: "ignore" }
  )
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  for (let i = 0; i < 500; i++) {
    if (await pingOnce(port)) break
    await new Promise((r) => setImmediate(r))
  }
  return {
    port,
    stop: async () => {
      child.kill("SIGTERM")
      await exited
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** RPUSH `length` elements (`item:<i>:<padding>`, 8-20 bytes) to `key` through a raw socket. */
const fillList = (port: number, key: string, length: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    const batch = 1000
    let out = ""
    for (let i = 0; i < length; i += batch) {
      const n = Math.min(batch, length - i)
      const args = ["RPUSH", key, ...Array.from({ length: n }, (_, j) => `item:${i + j}:${"x".repeat((i + j) % 7)}`)]
      out += `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`
    }
    // one integer reply for the DEL, one per RPUSH
    const expected = Math.ceil(length / batch) + 1
    let replies = ""
    socket.on("error", reject)
    socket.on("data", (d) => {
      replies += d.toString("latin1")
      if (replies.split("\r\n").length - 1 >= expected) {
        socket.destroy()
        resolve()
      }
    })
    socket.write(`*2\r\n$3\r\nDEL\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n`)
    socket.write(out)
  })

/** A client under test: each workload returns the number of commands it ran. */
interface Subject {
  readonly name: string
  readonly pingConcurrent: (callers: number, perCaller: number) => Promise<number>
  readonly getSetConcurrent: (callers: number, perCaller: number) => Promise<number>
  readonly pipeline: (batches: number, size: number) => Promise<number>
  readonly sequential: (count: number) => Promise<number>
  /** `count` times LRANGE of the whole list `key`, one at a time; checks the length of each reply. */
  readonly lrange: (key: string, length: number, count: number) => Promise<number>
  readonly close: () => Promise<void>
}

const times = <A>(n: number, f: (i: number) => A): Array<A> => Array.from({ length: n }, (_, i) => f(i))

const diesel = async (port: number): Promise<Subject> => {
  const scope = Effect.runSync(Scope.make())
  const redis = await Effect.runPromise(Scope.provide(RedisClient.make({ host: "127.0.0.1", port }), scope))
  const loop = (n: number, body: Effect.Effect<unknown, unknown>) =>
    Effect.gen(function* () {
      for (let i = 0; i < n; i++) yield* body
    })
  const getKey = Commands.get("bench:key")
  return {
    name: "diesel",
    pingConcurrent: (callers, per) =>
      Effect.runPromise(
        Effect.forEach(
          times(callers, () => loop(per, redis.ping())),
          (e) => e,
          { concurrency: "unbounded", discard: true }
        )
      ).then(() => callers * per),
    getSetConcurrent: (callers, per) =>
      Effect.runPromise(
        Effect.forEach(
          times(callers, (c) => loop(per, Effect.andThen(redis.set(`bench:${c}`, "value"), redis.get(`bench:${c}`)))),
          (e) => e,
          { concurrency: "unbounded", discard: true }
        )
      ).then(() => callers * per * 2),
    pipeline: (batches, size) => {
      const commands = times(size, () => getKey)
      return Effect.runPromise(loop(batches, redis.pipeline(commands))).then(() => batches * size)
    },
    sequential: (count) => Effect.runPromise(loop(count, redis.get("bench:key"))).then(() => count),
    lrange: (key, length, count) =>
      Effect.runPromise(
        loop(
          count,
          Effect.flatMap(redis.lrange(key, 0, -1), (items) =>
            items.length === length ? Effect.void : Effect.die(new Error(`LRANGE returned ${items.length} items`))
          )
        )
      ).then(() => count),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** The operations a promise-based client offers the benchmark. */
interface PromiseClient {
  readonly ping: () => Promise<unknown>
  readonly set: (key: string, value: string) => Promise<unknown>
  readonly get: (key: string) => Promise<unknown>
  /** Send `size` GETs of `key` as one pipeline. */
  readonly pipelineGets: (key: string, size: number) => Promise<unknown>
  readonly lrange: (key: string) => Promise<ReadonlyArray<unknown>>
  readonly close: () => void
}

/** The benchmark's subject for a promise-based client: every case is the same code, only the client differs. */
const promiseSubject = (name: string, client: PromiseClient): Subject => {
  const loop = async (n: number, body: () => Promise<unknown>) => {
    for (let i = 0; i < n; i++) await body()
  }
  return {
    name,
    pingConcurrent: async (callers, per) => {
      await Promise.all(times(callers, () => loop(per, client.ping)))
      return callers * per
    },
    getSetConcurrent: async (callers, per) => {
      await Promise.all(
        times(callers, (c) =>
          loop(per, async () => {
            await client.set(`bench:${c}`, "value")
            await client.get(`bench:${c}`)
          })
        )
      )
      return callers * per * 2
    },
    pipeline: async (batches, size) => {
      for (let b = 0; b < batches; b++) await client.pipelineGets("bench:key", size)
      return batches * size
    },
    sequential: async (count) => {
      await loop(count, () => client.get("bench:key"))
      return count
    },
    lrange: async (key, length, count) => {
      for (let i = 0; i < count; i++) {
        const items = await client.lrange(key)
        if (items.length !== length) throw new Error(`LRANGE returned ${items.length} items`)
      }
      return count
    },
    close: async () => client.close()
  }
}

const ioredis = async (port: number): Promise<Subject> => {
  const client = new IORedis({ host: "127.0.0.1", port, enableAutoPipelining: true, lazyConnect: true })
  await client.connect()
  return promiseSubject("ioredis", {
    ping: () => client.ping(),
    set: (key, value) => client.set(key, value),
    get: (key) => client.get(key),
    pipelineGets: (key, size) => {
      const p = client.pipeline()
      for (let i = 0; i < size; i++) p.get(key)
      return p.exec()
    },
    lrange: (key) => client.lrange(key, 0, -1),
    close: () => client.disconnect()
  })
}

const nodeRedis = async (port: number): Promise<Subject> => {
  const client = createClient({ socket: { host: "127.0.0.1", port } })
  await client.connect()
  return promiseSubject("node-redis", {
    ping: () => client.ping(),
    set: (key, value) => client.set(key, value),
    get: (key) => client.get(key),
    pipelineGets: (key, size) => {
      const m = client.multi()
      for (let i = 0; i < size; i++) m.get(key)
      return m.execAsPipeline()
    },
    lrange: (key) => client.lRange(key, 0, -1),
    close: () => {
      client.destroy()
    }
  })
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2
}

const run = async (options: { readonly smoke: boolean }): Promise<ReadonlyArray<Row>> => {
  const server = await startServer()
  const subjects: Array<Subject> = []
  try {
    subjects.push(await diesel(server.port), await ioredis(server.port), await nodeRedis(server.port))
    const scale = options.smoke ? 0.02 : 1
    const rounds = options.smoke ? 1 : 5
    const per = Math.max(5, Math.round(300 * scale))
    // A large reply: a list of 100,000 elements (about 1.6 MB of RESP), read whole with LRANGE.
    const listLength = options.smoke ? 2_000 : 100_000
    await fillList(server.port, "bench:list", listLength)
    const cases: ReadonlyArray<{ name: string; run: (s: Subject) => Promise<number> }> = [
      { name: "PING, 100 callers in flight", run: (s) => s.pingConcurrent(100, per) },
      { name: "GET/SET, 100 callers in flight", run: (s) => s.getSetConcurrent(100, per / 2) },
      { name: "pipeline of 100 GET", run: (s) => s.pipeline(Math.max(5, Math.round(300 * scale)), 100) },
      { name: "GET, one caller at a time", run: (s) => s.sequential(Math.max(50, Math.round(10_000 * scale))) },
      {
        name: `LRANGE of ${listLength.toLocaleString("en-US")} elements`,
        run: (s) => s.lrange("bench:list", listLength, options.smoke ? 3 : 10)
      }
    ]
    for (const s of subjects) {
      // warm-up
      for (const c of cases) await c.run(s)
    }
    const samples = new Map<string, Array<number>>()
    for (let r = 0; r < rounds; r++) {
      for (const c of cases) {
        // Alternate the order of subjects between rounds.
        const order = r % 2 === 0 ? subjects : [...subjects].reverse()
        for (const s of order) {
          const start = process.hrtime.bigint()
          const ops = await c.run(s)
          const seconds = Number(process.hrtime.bigint() - start) / 1e9
          const key = `${c.name}\u0000${s.name}`
          const list = samples.get(key) ?? []
          list.push(ops / seconds)
          samples.set(key, list)
        }
      }
    }
    const rows: Array<Row> = []
    for (const c of cases) {
      for (const s of subjects) {
        rows.push({
          case: c.name,
          subject: s.name,
          value: Math.round(median(samples.get(`${c.name}\u0000${s.name}`) ?? [])),
          unit: "ops/s",
          higherIsBetter: true
        })
      }
    }
    return rows
  } finally {
    for (const s of subjects) await s.close()
    await server.stop()
  }
}

/** The benchmark, for bench/run.ts. */
export const benchmark = { name: "redis", run }

if (isMain(import.meta.url)) await runAlone(benchmark)
