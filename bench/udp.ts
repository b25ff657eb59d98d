/**
 * UDP echo throughput and server CPU: diesel's UDPConnection conversations against a raw `node:dgram` echo
 * server and a bare effect `DatagramSocket` loop, side by side in one run.
 *
 * The servers run in this process, one at a time; the client load runs in a separate process
 * (bench/udp-load.ts: 8 sockets x 8 datagrams in flight = 64, each echo answered by a new send). Per round
 * and payload size (64 B, 1200 B) every subject is measured once, in an order that rotates per round; the
 * tables give medians over rounds and the ratio to node:dgram.
 *
 * - datagrams/s: echoes received by the load generator per second.
 * - server CPU-s per 1M datagrams: `process.cpuUsage()` of this (the server) process over the measurement
 *   window, per million echoes (each echo is one datagram in and one out on the server).
 *
 * `diesel UDPConnection, icmp: report` is the same server with `icmp: "report"` (a watch socket per peer).
 * It also runs bench/udp-idle.ts (heap per idle conversation with 100,000 peers).
 *
 *   pnpm exec tsx --conditions=@diesel/source bench/udp.ts [--smoke]
 */
import { spawn } from "node:child_process"
import * as Dgram from "node:dgram"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import { Connection } from "@diesel/core"
import { UDPConnection } from "@diesel/udp"
import * as NodeDatagramSocket from "@effect/platform-node/NodeDatagramSocket"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import { isMain, type Row, runAlone } from "./Harness.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
const loadScript = Path.join(here, "udp-load.ts")
const KERNEL_BUFFER = 4 * 1024 * 1024

interface Server {
  readonly port: number
  readonly stop: () => Promise<void>
}

type Subject =
  | "diesel UDPConnection"
  | "diesel UDPConnection, icmp: report"
  | "effect DatagramSocket loop"
  | "node:dgram"
const subjects: ReadonlyArray<Subject> = [
  "node:dgram",
  "diesel UDPConnection",
  "diesel UDPConnection, icmp: report",
  "effect DatagramSocket loop"
]

const startDgram = (): Promise<Server> =>
  new Promise((resolve) => {
    const socket = Dgram.createSocket("udp4")
    socket.on("message", (message, remote) => socket.send(message, remote.port, remote.address))
    socket.bind(0, "127.0.0.1", () => {
      socket.setRecvBufferSize(KERNEL_BUFFER)
      socket.setSendBufferSize(KERNEL_BUFFER)
      resolve({
        port: socket.address().port,
        stop: () => new Promise<void>((done) => socket.close(() => done()))
      })
    })
  })

const startEffect = (
  serve: (ready: (port: number) => void) => Effect.Effect<never, unknown, Scope.Scope>
): Promise<Server> =>
  new Promise((resolve) => {
    const fiber = Effect.runFork(
      Effect.scoped(serve((port) => resolve({ port, stop: () => Effect.runPromise(Fiber.interrupt(fiber)) })))
    )
  })

const startDiesel = (icmp: "ignore" | "report") =>
  startEffect((ready) =>
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        kernelReceiveBufferSize: KERNEL_BUFFER,
        kernelSendBufferSize: KERNEL_BUFFER,
        icmp,
        handler: UDPConnection.eachDatagram((datagram) => Connection.send(datagram.payload))
      })
      ready(server.localAddress.port)
      return yield* Effect.never
    })
  )

const startEffectLoop = () =>
  startEffect((ready) =>
    Effect.gen(function* () {
      const socket = yield* NodeDatagramSocket.make({
        bind: { address: "127.0.0.1", port: 0 },
        receiveBuffer: { capacity: 4096 },
        kernelReceiveBufferSize: KERNEL_BUFFER,
        kernelSendBufferSize: KERNEL_BUFFER
      })
      const reader = yield* socket.reader
      const writer = yield* socket.writer
      ready(reader.address.port)
      while (true) {
        for (const datagram of yield* reader.pull) yield* writer.write({ payload: datagram.payload, address: datagram })
      }
    })
  )

const start = (subject: Subject): Promise<Server> =>
  subject === "node:dgram"
    ? startDgram()
    : subject === "diesel UDPConnection"
      ? startDiesel("ignore")
      : subject === "diesel UDPConnection, icmp: report"
        ? startDiesel("report")
        : startEffectLoop()

interface Measurement {
  readonly perSecond: number
  readonly cpuPerMillion: number
}

/** Run the load generator against `port`, measuring this process's CPU over its measurement window. */
const load = (port: number, size: number, warmupMs: number, measureMs: number): Promise<Measurement> =>
  new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [loadScript, "echo", String(port), String(size), "64", "8", String(warmupMs), String(measureMs)],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    let cpu = process.cpuUsage()
    let result: Measurement | undefined
    Readline.createInterface({ input: child.stdout }).on("line", (line) => {
      if (line === "measure-start") cpu = process.cpuUsage()
      else if (line.startsWith("measure-end ")) {
        const used = process.cpuUsage(cpu)
        const stats = JSON.parse(line.slice("measure-end ".length)) as { received: number; elapsedMs: number }
        const cpuSeconds = (used.user + used.system) / 1e6
        result = {
          perSecond: stats.received / (stats.elapsedMs / 1000),
          cpuPerMillion: stats.received === 0 ? Number.NaN : (cpuSeconds / stats.received) * 1e6
        }
      }
    })
    child.on("error", reject)
    child.on("exit", (code) => {
      if (result !== undefined) resolve(result)
      else reject(new Error(`load generator exited with ${code} and no result`))
    })
  })

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2
}

const sizes = [64, 1200] as const

export const benchmark = {
  name: "udp",
  run: async (options: { readonly smoke: boolean }): Promise<ReadonlyArray<Row>> => {
    const rounds = options.smoke ? 1 : 5
    const warmupMs = options.smoke ? 200 : 500
    const measureMs = options.smoke ? 300 : 2000
    const samples = new Map<string, Array<Measurement>>()
    for (let round = 0; round < rounds; round++) {
      for (const size of sizes) {
        for (let i = 0; i < subjects.length; i++) {
          const subject = subjects[(i + round) % subjects.length] ?? "node:dgram"
          const server = await start(subject)
          try {
            const measurement = await load(server.port, size, warmupMs, measureMs)
            const key = `${size}|${subject}`
            samples.set(key, [...(samples.get(key) ?? []), measurement])
          } finally {
            await server.stop()
          }
        }
      }
    }
    const rows: Array<Row> = []
    // heap per idle conversation (100,000 peers; 5,000 in smoke mode), from bench/udp-idle.ts
    const idle = await import("./udp-idle.js")
    rows.push(...(await idle.benchmark.run(options)))
    for (const size of sizes) {
      for (const subject of subjects) {
        const measured = samples.get(`${size}|${subject}`) ?? []
        rows.push({
          case: `echo ${size} B, 64 in flight: throughput`,
          subject,
          value: median(measured.map((m) => m.perSecond)),
          unit: "datagrams/s",
          higherIsBetter: true
        })
        rows.push({
          case: `echo ${size} B, 64 in flight: server CPU`,
          subject,
          value: median(measured.map((m) => m.cpuPerMillion)),
          unit: "CPU-s per 1M datagrams",
          higherIsBetter: false
        })
      }
    }
    return rows
  }
}

if (isMain(import.meta.url)) await runAlone(benchmark)
