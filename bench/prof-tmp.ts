import { spawn } from "node:child_process"
import * as Readline from "node:readline"
import { Connection, Receive, TCPService } from "@diesel/tcp"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
const handler = Effect.forever(Effect.flatMap(Receive.receiveAny(), Connection.send), { disableYield: true })
const ready = Deferred.makeUnsafe<number>()
Effect.runFork(Effect.scoped(Effect.gen(function* () {
  const s = yield* TCPService.make({ host: "127.0.0.1", handler })
  yield* Deferred.succeed(ready, s.port)
  yield* Effect.never
})))
const port = await Effect.runPromise(Deferred.await(ready))
const child = spawn(process.execPath, ["--import", "tsx", "bench/tcp-load.ts"], { stdio: ["pipe", "pipe", "inherit"] })
const rl = Readline.createInterface({ input: child.stdout })
for (let i = 0; i < 4; i++) {
  const cpu = process.cpuUsage()
  child.stdin.write(JSON.stringify({ mode: "bulk", port, connections: 1, bytes: 256 * 1024 * 1024 }) + "\n")
  const line: string = await new Promise((r) => rl.once("line", r))
  const u = process.cpuUsage(cpu)
  const r = JSON.parse(line)
  console.log("bulk", r.elapsedMs.toFixed(0), "ms", (r.bytes / 1e3 / r.elapsedMs).toFixed(0), "MB/s", ((u.user + u.system) / r.messages).toFixed(2), "µs/64K", (globalThis as any).__pulls, (globalThis as any).__flushes, (globalThis as any).__chunks)
}
child.stdin.end()
process.exit(0)
