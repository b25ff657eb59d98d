/**
 * Heap per idle conversation: 100,000 peers (distinct source addresses across 127.0.0.x, from a separate
 * process) each send one datagram and go quiet; every conversation stays open, waiting for its next
 * datagram. Heap used (after a full GC) with the conversations live, minus the heap before, per
 * conversation. Target: at most 3 KB.
 *
 *   pnpm exec tsx --conditions=@diesel/source bench/udp-idle.ts [--smoke]
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import { UDPConnection } from "@diesel/udp"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { markdown, type Row, writeResults } from "./udp.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
const loadScript = Path.join(here, "udp-load.ts")

const collectGarbage = (): (() => void) => {
  V8.setFlagsFromString("--expose-gc")
  const gc: unknown = Vm.runInNewContext("gc")
  if (typeof gc !== "function") throw new Error("gc not available")
  return () => {
    for (let i = 0; i < 3; i++) gc()
  }
}

const measure = (peers: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const gc = collectGarbage()
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        maxConversations: peers * 2,
        idleTimeout: Duration.infinity,
        kernelReceiveBufferSize: 8 * 1024 * 1024,
        handler: UDPConnection.eachDatagram(() => Effect.void)
      })
      gc()
      const before = process.memoryUsage().heapUsed
      const sent = yield* Effect.callback<number, Error>((resume) => {
        const child = spawn(process.execPath, [loadScript, "peers", String(server.localAddress.port), String(peers)], {
          stdio: ["pipe", "pipe", "inherit"]
        })
        let buffered = ""
        let total = 0
        child.stdout.setEncoding("utf8")
        child.stdout.on("data", (chunk: string) => {
          buffered += chunk
          let newline = buffered.indexOf("\n")
          while (newline >= 0) {
            const line = buffered.slice(0, newline)
            buffered = buffered.slice(newline + 1)
            if (line.startsWith("batch ")) {
              const expected = Number(line.slice("batch ".length))
              // answer once the server has read every datagram sent so far (or after 1 s)
              const deadline = Date.now() + 1000
              const check = () => {
                if (server.stats.datagramsIn >= expected || Date.now() > deadline) child.stdin.write("ok\n")
                else setImmediate(check)
              }
              check()
            } else if (line.startsWith("peers-done ")) {
              total = (JSON.parse(line.slice("peers-done ".length)) as { sent: number }).sent
            }
            newline = buffered.indexOf("\n")
          }
        })
        child.on("exit", () => resume(Effect.succeed(total)))
        child.on("error", (error) => resume(Effect.fail(error)))
      })
      const live = yield* server.size
      gc()
      const after = process.memoryUsage().heapUsed
      return { sent, live, perConversation: (after - before) / live }
    })
  )

export const benchmark = {
  name: "udp-idle",
  run: async (options: { readonly smoke: boolean }): Promise<ReadonlyArray<Row>> => {
    const peers = options.smoke ? 5_000 : 100_000
    const result = await Effect.runPromise(measure(peers))
    process.stderr.write(`udp-idle: ${result.sent} peers sent, ${result.live} conversations live\n`)
    return [
      {
        case: `idle conversations (${result.live.toLocaleString("en-US")} peers): heap per conversation`,
        subject: "diesel UDPConnection",
        value: result.perConversation,
        unit: "bytes",
        higherIsBetter: false
      }
    ]
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await benchmark.run({ smoke: process.argv.includes("--smoke") })
  const table = markdown(rows)
  writeResults("udp-idle", rows, table)
  process.stdout.write(`${table}\n`)
}
