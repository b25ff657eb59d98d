import { Connection, Receive } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Latch from "effect/Latch"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import { TestClock } from "effect/testing"
import { Metrics, TCPService } from "../src/index.js"
import { onBothNetworks, peerConnect, peerReadToEnd, rawConnect, rawRead, rawWrite } from "./helpers.js"

onBothNetworks("maxConnections", (live, _effect, network) => {
  live("whenFull: close closes new connections at once", () =>
    Effect.gen(function* () {
      const started = yield* Queue.unbounded<void>()
      const release = yield* Latch.make(false)
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        name: `full-close-${network}`,
        maxConnections: 2,
        handler: Effect.gen(function* () {
          yield* Queue.offer(started, undefined)
          yield* release.await
          yield* Connection.send("served\r\n")
        })
      })
      const a = yield* peerConnect(service.port)
      const b = yield* peerConnect(service.port)
      yield* Queue.take(started)
      yield* Queue.take(started)
      const c = yield* peerConnect(service.port)
      const refused = yield* peerReadToEnd(c)
      assert.strictEqual(refused.byteLength, 0)
      const rejected = yield* Metric.value(
        Metric.withAttributes(
          Metrics.connectionsRejected,
          Metrics.attributes({ role: "server", service: `full-close-${network}` })
        )
      )
      assert.strictEqual(rejected.count, 1)
      yield* release.open
      assert.strictEqual((yield* peerReadToEnd(a)).toString(), "served\r\n")
      assert.strictEqual((yield* peerReadToEnd(b)).toString(), "served\r\n")
    })
  )

  live("whenFull: wait holds new connections until a conversation ends", () =>
    Effect.gen(function* () {
      const lines = yield* Queue.unbounded<string>()
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        maxConnections: 1,
        whenFull: "wait",
        handler: Effect.gen(function* () {
          const line = Receive.text(yield* Receive.untilEol())
          yield* Queue.offer(lines, line)
          yield* Connection.send(`ok ${line}`)
        })
      })
      const a = yield* peerConnect(service.port)
      const b = yield* peerConnect(service.port)
      yield* b.write("second\r\n")
      yield* a.write("first\r\n")
      // only one conversation runs at a time: the first one served is the one holding the slot
      const first = yield* Queue.take(lines)
      const second = yield* Queue.take(lines)
      assert.deepStrictEqual([first, second].sort(), ["first\r\n", "second\r\n"])
      assert.strictEqual((yield* peerReadToEnd(a)).toString(), "ok first\r\n")
      assert.strictEqual((yield* peerReadToEnd(b)).toString(), "ok second\r\n")
    })
  )
})

onBothNetworks("idle timeout", (_live, effect) => {
  effect("a conversation with no traffic for idleTimeout is closed (TestClock)", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        idleTimeout: "30 seconds",
        handler: Effect.andThen(Deferred.succeed(started, undefined), Effect.forever(Receive.untilEol()))
      })
      const client = yield* peerConnect(service.port)
      yield* Deferred.await(started)
      const reading = yield* Effect.forkChild(peerReadToEnd(client))
      yield* TestClock.adjust("29 seconds")
      assert.isUndefined(reading.pollUnsafe())
      yield* TestClock.adjust("1 second")
      const rest = yield* Fiber.join(reading)
      assert.strictEqual(rest.byteLength, 0)
    })
  )

  effect("traffic resets the idle timer", () =>
    Effect.gen(function* () {
      const lines = yield* Queue.unbounded<string>()
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        idleTimeout: "30 seconds",
        handler: Effect.forever(Effect.flatMap(Receive.untilEol(), (line) => Queue.offer(lines, Receive.text(line))))
      })
      const client = yield* peerConnect(service.port)
      yield* TestClock.adjust("20 seconds")
      yield* client.write("a\r\n")
      yield* Queue.take(lines)
      yield* TestClock.adjust("20 seconds")
      // 40 s since connect, 20 s since the line: still open
      yield* client.write("b\r\n")
      assert.strictEqual(yield* Queue.take(lines), "b\r\n")
    })
  )
})

onBothNetworks("graceful shutdown", (live) => {
  live("stops accepting, lets conversations finish", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const started = yield* Deferred.make<void>()
      const finish = yield* Latch.make(false)
      const service = yield* Scope.provide(
        TCPService.make({
          host: "127.0.0.1",
          drainTimeout: "30 seconds",
          handler: Effect.gen(function* () {
            yield* Deferred.succeed(started, undefined)
            yield* finish.await
            yield* Connection.send("finished\r\n")
          })
        }),
        scope
      )
      const client = yield* peerConnect(service.port)
      yield* Deferred.await(started)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      // the listener closes at once: new connections are refused
      const refused = yield* Effect.exit(
        Effect.retry(
          Effect.flatMap(Effect.scoped(peerConnect(service.port)), () => Effect.fail("still accepting" as const)),
          { while: (error) => error === "still accepting", times: 1000 }
        )
      )
      assert.isTrue(Exit.isFailure(refused))
      assert.isUndefined(closing.pollUnsafe())
      yield* finish.open
      assert.strictEqual((yield* peerReadToEnd(client)).toString(), "finished\r\n")
      yield* Fiber.join(closing)
    })
  )

  live("interrupts conversations still running at the drain deadline", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const service = yield* Scope.provide(
        TCPService.make({
          host: "127.0.0.1",
          drainTimeout: "50 millis",
          handler: Effect.andThen(
            Deferred.succeed(started, undefined),
            Effect.onInterrupt(Effect.never, () => Deferred.succeed(interrupted, undefined))
          )
        }),
        scope
      )
      const client = yield* peerConnect(service.port)
      yield* Deferred.await(started)
      yield* Scope.close(scope, Exit.void)
      yield* Deferred.await(interrupted)
      assert.strictEqual((yield* peerReadToEnd(client)).byteLength, 0)
    })
  )
})

onBothNetworks("shutdown with a peer that stopped reading", (live) => {
  live("a conversation blocked in send is aborted at the drain deadline", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const blocked = yield* Deferred.make<void>()
      const chunk = new Uint8Array(64 * 1024)
      const service = yield* Scope.provide(
        TCPService.make({
          host: "127.0.0.1",
          drainTimeout: "50 millis",
          handler: Effect.gen(function* () {
            for (let i = 0; i < 1024; i++) {
              if (i === 1) yield* Deferred.succeed(blocked, undefined)
              yield* Connection.send(chunk)
            }
          })
        }),
        scope
      )
      yield* peerConnect(service.port) // and never pulls
      // 64 MiB to send to a peer that does not read: the conversation blocks and cannot finish by itself
      yield* Deferred.await(blocked)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(service.connections(), 0)
    })
  )
})

// node only: the kernel's listen backlog and 1,000 real sockets
describe("load (node)", () => {
  it.live("1,000 concurrent connections", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        backlog: 2048,
        handler: Effect.forever(Effect.flatMap(Receive.untilEol(), Connection.send))
      })
      const replies = yield* Effect.forEach(
        Array.from({ length: 1000 }, (_, i) => i),
        (i) =>
          Effect.gen(function* () {
            const client = yield* rawConnect(service.port)
            const line = `client ${i}\r\n`
            yield* rawWrite(client, line)
            const reply = yield* rawRead(client, line.length)
            return reply.toString() === line
          }),
        { concurrency: 1000 }
      )
      assert.strictEqual(replies.filter(Boolean).length, 1000)
      assert.strictEqual(service.connections(), 1000)
    })
  )
})
