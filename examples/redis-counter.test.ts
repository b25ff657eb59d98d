/**
 * The Redis example runs as its own process against a real redis-server started here, and must exit 0.
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as RedisServer from "../packages/clients/test/harness/RedisServer.js"

const here = Path.dirname(fileURLToPath(import.meta.url))

it.live(
  "redis-counter counts visits, announces them and reports under a lock",
  () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.make()
      const { code, output } = yield* Effect.callback<{ readonly code: number | null; readonly output: string }>(
        (resume) => {
          const child = spawn(
            process.execPath,
            ["--conditions=@diesel/source", "--import", "tsx", Path.join(here, "redis-counter.ts"), server.url],
            { cwd: Path.join(here, ".."), stdio: ["ignore", "pipe", "pipe"] }
          )
          let output = ""
          const collect = (chunk: Buffer) => {
            output += chunk.toString()
          }
          child.stdout.on("data", collect)
          child.stderr.on("data", collect)
          child.on("exit", (code) => resume(Effect.succeed({ code, output })))
          return Effect.sync(() => {
            child.kill("SIGKILL")
          })
        }
      )
      assert.strictEqual(code, 0, output)
      assert.strictEqual(output.match(/^announced /gm)?.length, 5)
      assert.include(output, "home: 3")
      assert.include(output, "about: 1")
      assert.include(output, "blog: 1")
    }),
  60_000
)
