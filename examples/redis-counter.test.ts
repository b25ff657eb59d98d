/**
 * The Redis example runs as its own process against a real redis-server started here, and must exit 0.
 */
import { assert, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as RedisServer from "../packages/clients/test/harness/RedisServer.js"
import { runExample } from "./runExample.js"

it.live(
  "redis-counter counts visits, announces them and reports under a lock",
  () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.make()
      const { code, stdout, stderr } = yield* runExample("redis-counter.ts", [server.url])
      assert.strictEqual(code, 0, stderr)
      assert.strictEqual(stdout.match(/^announced /gm)?.length, 5)
      assert.include(stdout, "home: 3")
      assert.include(stdout, "about: 1")
      assert.include(stdout, "blog: 1")
    }),
  60_000
)
