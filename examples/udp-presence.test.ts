import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { main } from "./udp-presence.js"

describe("examples/udp-presence", () => {
  it.live("each peer is pinged by its conversation's child, and leaves by going quiet", () =>
    Effect.gen(function* () {
      const log = yield* main({ pingEvery: "100 millis", missedPings: 5 })
      const alice = log.filter((line) => line.includes("alice"))
      const bob = log.filter((line) => line.includes("bob"))
      assert.deepStrictEqual(alice, [
        "server: alice is here",
        "server: pong 1 from alice",
        "server: pong 2 from alice",
        "server: pong 3 from alice",
        "server: alice went quiet, conversation ended"
      ])
      assert.deepStrictEqual(bob, [
        "server: bob is here",
        "server: pong 1 from bob",
        "server: bob went quiet, conversation ended"
      ])
      assert.strictEqual(log.at(-1), "server: 2 conversations ended idle, 0 live")
    })
  )
})
