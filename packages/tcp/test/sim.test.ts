/**
 * What only the simulated network can do: partitions longer than the TCP connection timeout, and a server
 * host that crashes and restarts, with TCPService and TCPClient on the two sides.
 */
import { Connection, Receive } from "@diesel/core"
import { SimNetwork } from "@diesel/sim"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import { TCPClient, type TCPConnection, TCPService } from "../src/index.js"
import { text } from "./helpers.js"

const PORT = 7000
const CONNECTION_TIMEOUT = 5_000

/** The software of host `server`: a line echo service, until the host crashes. */
const echoServer = Effect.scoped(
  Effect.andThen(
    TCPService.make({ port: PORT, handler: Effect.forever(Effect.flatMap(Receive.untilEol(), Connection.send)) }),
    Effect.never
  )
)

/** One round trip on a client's connection. */
const echo = (client: TCPConnection.TCPConnection, line: string) =>
  TCPClient.call(
    client,
    Effect.map(Effect.andThen(Connection.send(`${line}\r\n`), Receive.untilEol()), (reply) => text(reply))
  )

/** Connect, ask once, hang up; retried every second (each attempt a new connection). */
const askWithRetry = (line: string) =>
  Effect.scoped(
    Effect.flatMap(TCPClient.connect({ host: "server", port: PORT, timeout: "2 seconds" }), (client) =>
      echo(client, line)
    )
  ).pipe(Effect.retry(Schedule.spaced("1 second")))

const simulation = SimNetwork.layer({
  seed: 5,
  hosts: ["client", "server"],
  link: { latency: "5 millis" },
  tcp: { connectionTimeout: `${CONNECTION_TIMEOUT} millis` },
  clock: "virtual"
})

describe("TCPService and TCPClient on a simulated network", () => {
  it.effect(
    "a partition longer than the connection timeout ends the connection; a client reconnects after repair",
    () =>
      Effect.gen(function* () {
        const sim = yield* SimNetwork.SimNetwork
        yield* sim.spawn("server", echoServer)
        yield* SimNetwork.onHost("client")(
          Effect.gen(function* () {
            const client = yield* TCPClient.connect({ host: "server", port: PORT })
            assert.strictEqual(yield* echo(client, "before"), "before\r\n")

            yield* sim.partition("client", "server")
            const cut = yield* Clock.currentTimeMillis
            const error = yield* Effect.flip(echo(client, "during"))
            const failedAfter = (yield* Clock.currentTimeMillis) - cut
            // a typed error of the conversation, not a defect, once the timeout has passed (simulated time)
            assert.strictEqual(error._tag, "ConnectionClosedError")
            if (error._tag === "ConnectionClosedError") assert.strictEqual(error.reason, "reset")
            assert.isAtLeast(failedAfter, CONNECTION_TIMEOUT)

            // a client that keeps retrying gets through once the network is repaired
            const retrying = yield* Effect.forkChild(askWithRetry("after"))
            yield* Effect.sleep("10 seconds")
            assert.isUndefined(retrying.pollUnsafe(), "no connection while partitioned")
            yield* sim.repair("client", "server")
            assert.strictEqual(yield* Fiber.join(retrying), "after\r\n")
          }).pipe(Effect.scoped)
        )
      }).pipe(Effect.provide(simulation))
  )

  it.effect("a crashed server host is restarted and clients recover", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.spawn("server", echoServer)
      yield* SimNetwork.onHost("client")(
        Effect.gen(function* () {
          const client = yield* TCPClient.connect({ host: "server", port: PORT })
          assert.strictEqual(yield* echo(client, "before"), "before\r\n")

          yield* sim.crash("server")
          // the established connection was reset: a typed error on the next call
          const error = yield* Effect.flip(echo(client, "during"))
          assert.strictEqual(error._tag, "ConnectionClosedError")
          if (error._tag === "ConnectionClosedError") assert.strictEqual(error.reason, "reset")
          // a new connection cannot be made while the host is down
          const refused = yield* Effect.flip(TCPClient.connect({ host: "server", port: PORT, timeout: "2 seconds" }))
          assert.strictEqual(refused._tag, "ConnectError")
          assert.isTrue(refused.timedOut, "a crashed host does not answer at all")

          const retrying = yield* Effect.forkChild(askWithRetry("after"))
          yield* Effect.sleep("5 seconds")
          assert.isUndefined(retrying.pollUnsafe(), "no connection while the host is down")
          yield* sim.restart("server")
          assert.strictEqual(yield* Fiber.join(retrying), "after\r\n")
        }).pipe(Effect.scoped)
      )
    }).pipe(Effect.provide(simulation))
  )

  it.effect("output sent before a sleep goes out before the sleep ends (the deferred flush holds virtual time)", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        handler: Effect.andThen(
          Connection.send("hello\r\n"),
          Effect.andThen(Effect.sleep("10 seconds"), Connection.send("bye\r\n"))
        )
      })
      const client = yield* TCPClient.connect({ host: "127.0.0.1", port: service.port })
      const start = yield* Clock.currentTimeMillis
      assert.strictEqual(text(yield* TCPClient.call(client, Receive.untilEol())), "hello\r\n")
      assert.isBelow((yield* Clock.currentTimeMillis) - start, 10_000, "hello was held back until the sleep ended")
      assert.strictEqual(text(yield* TCPClient.call(client, Receive.untilEol())), "bye\r\n")
    }).pipe(Effect.scoped, Effect.provide(simulation))
  )
})
