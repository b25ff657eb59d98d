/**
 * Run an example as its own process, as a user would (`tsx` with the source condition), for the example tests.
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Effect from "effect/Effect"

const here = Path.dirname(fileURLToPath(import.meta.url))

/** How an example process ended and what it printed. */
export interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Run `examples/<file>` with `args`, writing `stdin` to it if given; the process is killed if interrupted. */
export const runExample = (file: string, args: ReadonlyArray<string> = [], stdin?: string): Effect.Effect<Run> =>
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
    child.stdin.end()
    return Effect.sync(() => {
      child.kill("SIGKILL")
    })
  })
