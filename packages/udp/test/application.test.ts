import { Application, Connection } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { UDPConnection } from "../src/index.js"
import { testClient } from "./helpers.js"

describe("UDPConnection in an Application", () => {
  it.live("starts no new conversation once the application drains; the ones in progress finish", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<{
        readonly socket: UDPConnection.UDPSocketService
        readonly lifecycle: Application.Lifecycle
      }>()
      const app = yield* Effect.forkChild(
        Application.run({
          services: UDPConnection.layer({
            host: "127.0.0.1",
            port: 0,
            // each conversation answers two datagrams, then ends
            handler: Effect.gen(function* () {
              for (let i = 0; i < 2; i++) yield* Connection.send((yield* UDPConnection.datagram).payload)
            })
          }),
          drainTimeout: "10 seconds",
          setup: Effect.gen(function* () {
            const socket = yield* UDPConnection.UDPSocket
            const lifecycle = yield* Application.CurrentLifecycle
            yield* Deferred.succeed(started, { socket, lifecycle })
          })
        })
      )
      const { socket, lifecycle } = yield* Deferred.await(started)
      const early = yield* testClient()
      yield* early.send(socket.localAddress, "one")
      assert.strictEqual(yield* early.receiveText, "one")
      yield* lifecycle.stop
      yield* lifecycle.draining.await
      yield* Effect.yieldNow
      const late = yield* testClient()
      yield* late.send(socket.localAddress, "let me in")
      // the late peer's datagram is dropped, counted, and starts nothing; the early peer is still answered
      yield* early.send(socket.localAddress, "two")
      assert.strictEqual(yield* early.receiveText, "two")
      assert.strictEqual(socket.stats.dropped.draining, 1)
      assert.strictEqual(socket.stats.started, 1)
      yield* Fiber.join(app)
    })
  )
})
