/**
 * Heap per idle conversation: 100,000 peers (distinct source addresses across 127.0.0.x, from a separate
 * process) each send one datagram and go quiet; every conversation stays open, waiting for its next
 * datagram. Heap used (after a full GC) with the conversations live, minus the heap before, per
 * conversation. Target: at most 3 KB.
 *
 * Second case, the cost of `icmp: "report"`: fewer peers, and each conversation replies once (so it opens its
 * watch socket) before going idle; heap and file descriptors per conversation.
 *
 *   pnpm exec tsx --conditions=@diesel/source bench/udp-idle.ts [--smoke]
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import { Connection } from "@diesel/core"
import { UDPConnection } from "@diesel/udp"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { isMain, type Row, runAlone } from "./Harness.js"

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

const openFds = (): number => {
  try {
    return Fs.readdirSync("/proc/self/fd").length
  } catch {
    return Number.NaN
  }
}

const ignoreAll = UDPConnection.eachDatagram(() => Effect.void)

const measure = (peers: number, icmp: "ignore" | "report") =>
  Effect.scoped(
    Effect.gen(function* () {
      const gc = collectGarbage()
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        maxConversations: peers * 2,
        idleTimeout: Duration.infinity,
        kernelReceiveBufferSize: 8 * 1024 * 1024,
        icmp,
        handler:
          icmp === "report"
            ? Effect.andThen(
                Connection.send("hello"),
                // the peers have closed their sockets: each conversation is told once, then waits on
                Effect.catchTag(ignoreAll, "PeerUnreachableError", () => ignoreAll)
              )
            : UDPConnection.eachDatagram(() => Effect.void)
      })
      gc()
      const before = process.memoryUsage().heapUsed
      const fdsBefore = openFds()
      const sent = yield* Effect.callback<number, Error>((resume) => {
        const child = spawn(process.execPath, [loadScript, "peers", String(server.localAddress.port), String(peers)], {
          stdio: ["pipe", "pipe", "inherit"]
        })
        let total = 0
        Readline.createInterface({ input: child.stdout }).on("line", (line) => {
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
        })
        child.on("exit", () => resume(Effect.succeed(total)))
        child.on("error", (error) => resume(Effect.fail(error)))
      })
      const live = yield* server.size
      // icmp: "report": wait until every conversation has replied (its watch socket is then open)
      for (let i = 0; i < 500 && icmp === "report" && server.stats.datagramsOut < live; i++) {
        yield* Effect.sleep("10 millis")
      }
      gc()
      const after = process.memoryUsage().heapUsed
      const fds = openFds() - fdsBefore
      return { sent, live, perConversation: (after - before) / live, fdsPerConversation: fds / live }
    })
  )

export const benchmark = {
  name: "udp-idle",
  run: async (options: { readonly smoke: boolean }): Promise<ReadonlyArray<Row>> => {
    const peers = options.smoke ? 5_000 : 100_000
    const result = await Effect.runPromise(measure(peers, "ignore"))
    process.stderr.write(`udp-idle: ${result.sent} peers sent, ${result.live} conversations live\n`)
    const reporting = await Effect.runPromise(measure(options.smoke ? 1_000 : 5_000, "report"))
    process.stderr.write(`udp-idle icmp: ${reporting.sent} peers sent, ${reporting.live} conversations live\n`)
    const icmpCase = `idle conversations that replied once, icmp: "report" (${reporting.live.toLocaleString("en-US")} peers)`
    return [
      {
        case: `idle conversations (${result.live.toLocaleString("en-US")} peers): heap per conversation`,
        subject: "diesel UDPConnection",
        value: result.perConversation,
        unit: "bytes",
        higherIsBetter: false
      },
      {
        case: `${icmpCase}: heap per conversation`,
        subject: "diesel UDPConnection",
        value: reporting.perConversation,
        unit: "bytes",
        higherIsBetter: false
      },
      {
        case: `${icmpCase}: file descriptors per conversation`,
        subject: "diesel UDPConnection",
        value: reporting.fdsPerConversation,
        unit: "fds",
        higherIsBetter: false
      }
    ]
  }
}

if (isMain(import.meta.url)) await runAlone(benchmark)
