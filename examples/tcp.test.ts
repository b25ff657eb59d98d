/**
 * Each TCP example runs as its own process and must exit 0; the chat client is driven through its
 * stdin against a chat server run here.
 */
import { TCPService } from "@diesel/tcp"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { runExample } from "./runExample.js"
import { chat } from "./tcp-chat.js"

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
