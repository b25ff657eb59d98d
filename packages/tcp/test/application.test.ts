import { Application, Connection, Receive } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Latch from "effect/Latch"
import { TCPService } from "../src/index.js"
import { rawConnect, rawReadToEnd, rawWrite } from "./helpers.js"

describe("TCPService in an Application", () => {
  it.live("stops accepting when the application drains, and lets the conversation in progress finish", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<{ readonly port: number; readonly stop: Effect.Effect<void> }>()
      const inProgress = yield* Latch.make()
      const app = yield* Effect.forkChild(
        Application.run({
          services: TCPService.layer({
            host: "127.0.0.1",
            port: 0,
            handler: Effect.gen(function* () {
              yield* inProgress.open
              const line = yield* Receive.untilEol()
              yield* Connection.send(line)
            })
          }),
          drainTimeout: "10 seconds",
          setup: Effect.gen(function* () {
            const service = yield* TCPService.TCPService
            const lifecycle = yield* Application.CurrentLifecycle
            yield* Deferred.succeed(started, { port: service.port, stop: lifecycle.stop })
          })
        })
      )
      const { port, stop } = yield* Deferred.await(started)
      const client = yield* rawConnect(port)
      yield* inProgress.await
      yield* stop
      // the listener closes once draining starts: a new connection is refused (retry until it is)
      const refused = yield* Effect.flip(
        Effect.retry(
          Effect.flatMap(Effect.scoped(rawConnect(port)), () => Effect.fail("still accepting" as const)),
          { while: (error) => error === "still accepting", times: 1000 }
        )
      )
      assert.notStrictEqual(refused, "still accepting")
      assert.isUndefined(app.pollUnsafe())
      // the conversation in progress still completes, then the application ends
      yield* rawWrite(client, "last words\r\n")
      assert.strictEqual((yield* rawReadToEnd(client)).toString(), "last words\r\n")
      yield* Fiber.join(app)
    })
  )
})
