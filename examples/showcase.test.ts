/**
 * The showcase (`pnpm demo`) runs as its own process, as a user would run it, and must exit 0 by itself.
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

const here = Path.dirname(fileURLToPath(import.meta.url))

describe("showcase", () => {
  it.live(
    "plays a game over UDP with a TCP scoreboard, shows the live loops, shuts down gracefully, exits 0",
    () =>
      Effect.callback<{ readonly code: number | null; readonly output: string }>((resume) => {
        const child = spawn(
          process.execPath,
          ["--conditions=@diesel/source", "--import", "tsx", Path.join(here, "showcase.ts")],
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
      }).pipe(
        Effect.tap(({ code, output }) => {
          assert.strictEqual(code, 0, output)
          for (const name of ["ada", "grace", "linus"]) {
            assert.include(output, `game: ${name} joined`)
            assert.include(output, `game: ${name} went quiet; conversation over`)
          }
          assert.include(output, 'conversation "player ada"')
          assert.include(output, 'child "ticker grace"')
          assert.include(output, "final totals: ada=12, grace=11, linus=7; game conversations now: 0")
          return Effect.void
        })
      ),
    60_000
  )
})
