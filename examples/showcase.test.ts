/**
 * The showcase (`pnpm demo`) runs as its own process, as a user would run it, and must exit 0 by itself.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { runExample } from "./runExample.js"

describe("showcase", () => {
  it.live(
    "plays a game over UDP with a TCP scoreboard, shows the live loops, shuts down gracefully, exits 0",
    () =>
      Effect.gen(function* () {
        const { code, stdout, stderr } = yield* runExample("showcase.ts")
        assert.strictEqual(code, 0, stderr)
        for (const name of ["ada", "grace", "linus"]) {
          assert.include(stdout, `game: ${name} joined`)
          assert.include(stdout, `game: ${name} went quiet; conversation over`)
        }
        assert.include(stdout, 'conversation "player ada"')
        assert.include(stdout, 'child "ticker grace"')
        assert.include(stdout, "final totals: ada=12, grace=11, linus=7; game conversations now: 0")
      }),
    60_000
  )
})
