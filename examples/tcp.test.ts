/**
 * Each TCP example runs as its own process and must exit 0; the chat client is driven through its
 * stdin against a chat server run here.
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { TCPService } from "@diesel/tcp"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { chat } from "./tcp-chat.js"

const here = Path.dirname(fileURLToPath(import.meta.url))

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const runExample = (file: string, args: ReadonlyArray<string> = [], stdin?: string): Effect.Effect<Run> =>
  Effect.callback<Run>((resume) => {
    const child = spawn(
      process.execPath,
      ["--conditions=@diesel/source", "--import", "tsx", Path.join(here, file), ...args],
      { cwd: Path.join(here, ".."), stdio: ["pipe", "pipe", "pipe"] }
    )
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.on("exit", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    if (stdin !== undefined) child.stdin.write(stdin)
    return Effect.sync(() => {
      child.kill()
    })
  })

describe("TCP examples", () => {
  for (const [file, expected] of [
    ["tcp-line-echo.ts", "line echo: ok"],
    ["tcp-combined.ts", "5000 round trips"],
    ["tcp-chat.ts", "chat: ok"],
    ["tcp-tls-echo.ts", "tls echo: ok"]
  ] as const) {
    it.live(`${file} runs and exits 0`, () =>
      Effect.gen(function* () {
        const run = yield* runExample(file)
        assert.strictEqual(run.code, 0, run.stderr)
        assert.include(run.stdout, expected)
      })
    )
  }

  it.live("the telnet-style chat client, driven through stdin", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({ host: "127.0.0.1", port: 0, handler: chat })
      const run = yield* runExample("tcp-chat.ts", ["--client", "127.0.0.1", String(service.port)], "carol\n/quit\n")
      assert.strictEqual(run.code, 0, run.stderr)
      assert.include(run.stdout, "nick?")
      assert.include(run.stdout, "welcome carol")
      assert.include(run.stdout, "bye")
    })
  )
})
