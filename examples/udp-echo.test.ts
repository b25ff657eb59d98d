import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { main } from "./udp-echo.js"

describe("examples/udp-echo", () => {
  it.live("two clients, one conversation each, every line echoed", () =>
    Effect.gen(function* () {
      const result = yield* main
      assert.deepStrictEqual(result.alice, ["hello", "how are you?", "bye"])
      assert.deepStrictEqual(result.bob, ["ping", "bye"])
      assert.strictEqual(result.conversations, 2)
    })
  )
})
