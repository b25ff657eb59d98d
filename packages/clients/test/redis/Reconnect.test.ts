import { RedisClient, Resp } from "@diesel/clients/redis"
import { Network } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Socket from "effect/socket/Socket"
import { TestClock } from "effect/testing"

/**
 * A fake network whose server answers +PONG to every command. `up` says whether connections succeed;
 * `kill` drops the current connection.
 */
const fakeNetwork = () => {
  const state = { up: true, connects: 0, times: [] as Array<number>, kill: Deferred.makeUnsafe<void>() }
  const network: Network.NetworkService = {
    ...Network.node,
    connect: () =>
      Effect.sync(() => {
        const inbox: Array<Uint8Array> = []
        let wake: (() => void) | undefined
        const parser = new Resp.Parser()
        const reader = Effect.gen(function* () {
          state.connects++
          state.times.push(yield* Clock.currentTimeMillis)
          if (!state.up) {
            return yield* Effect.fail(
              new Socket.SocketError({ reason: new Socket.SocketOpenError({ kind: "Unknown", cause: "refused" }) })
            )
          }
          const kill = Deferred.makeUnsafe<void>()
          state.kill = kill
          const pull: Effect.Effect<readonly [Uint8Array, ...Array<Uint8Array>], Socket.SocketError> = Effect.suspend(
            () => {
              const [first, ...rest] = inbox.splice(0)
              if (first !== undefined) return Effect.succeed([first, ...rest] as const)
              return Effect.callback<void>((resume) => {
                wake = () => resume(Effect.void)
              }).pipe(
                Effect.raceFirst(Deferred.await(kill)),
                Effect.andThen(
                  Deferred.isDoneUnsafe(kill)
                    ? Effect.fail(new Socket.SocketError({ reason: new Socket.SocketCloseError({ code: 1006 }) }))
                    : pull
                )
              )
            }
          )
          return { pull, upgrade: Socket.SocketUpgradeError.unsupported }
        })
        const write = (chunk: Uint8Array | string | Socket.CloseEvent) =>
          Effect.sync(() => {
            if (Socket.isCloseEvent(chunk)) return
            parser.feed(typeof chunk === "string" ? Buffer.from(chunk) : chunk)
            while (parser.next() !== undefined) inbox.push(Buffer.from("+PONG\r\n"))
            const w = wake
            wake = undefined
            w?.()
          })
        return Socket.make({
          reader,
          writer: Effect.succeed({
            write,
            writeAll: (chunks) => Effect.forEach(chunks, write, { discard: true })
          })
        })
      })
  }
  return { network, state }
}

describe("reconnection on a simulated network", () => {
  it.effect("backs off exponentially with jitter, capped, and releases queued commands on reconnect", () =>
    Effect.gen(function* () {
      const { network, state } = fakeNetwork()
      const redis = yield* RedisClient.make({
        protocol: 2,
        reconnect: { baseDelay: "1 second", maxDelay: "4 seconds" }
      }).pipe(Network.provide(network))
      assert.strictEqual(yield* redis.ping(), "PONG")
      assert.strictEqual(state.connects, 1)

      state.up = false
      yield* Deferred.succeed(state.kill, undefined)
      const queued = yield* Effect.forkChild(redis.ping(), { startImmediately: true })
      const killedAt = yield* Clock.currentTimeMillis
      // Delays are base * 2^attempt, capped at 4 s, each scaled by a jitter in [0.5, 1].
      const expected = [1000, 2000, 4000, 4000, 4000]
      while (state.connects < 1 + expected.length) yield* TestClock.adjust(10)
      const attempts = [killedAt, ...state.times.slice(1)]
      expected.forEach((delay, i) => {
        const gap = (attempts[i + 1] ?? 0) - (attempts[i] ?? 0)
        assert.ok(
          gap >= delay / 2 && gap <= delay + 10,
          `attempt ${i + 1}: ${gap} ms, expected within [${delay / 2}, ${delay}]`
        )
      })
      state.up = true
      yield* TestClock.adjust(4000)
      assert.strictEqual(yield* Fiber.join(queued), "PONG")
      assert.strictEqual(yield* redis.ping(), "PONG")
    })
  )
})
