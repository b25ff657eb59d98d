/**
 * Presence: each peer says hello; its conversation forks a child that pings the peer every second, and
 * reads the peer's pongs. When the peer goes quiet, the idle timeout ends the conversation (and its child).
 *
 *   pnpm exec tsx --conditions=@diesel/source examples/udp-presence.ts
 */
import { pathToFileURL } from "node:url"
import { ConnectedLoop, Connection } from "@diesel/core"
import { UDPConnection } from "@diesel/udp"
import { NodeRuntime } from "@effect/platform-node"
import * as Console from "effect/Console"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)

export interface PresenceOptions {
  /** How often the server pings each peer. */
  readonly pingEvery: Duration.Input
  /** How many pings a peer may miss before it counts as gone. */
  readonly missedPings: number
}

/** Start the server, let alice answer 3 pings and bob 1, then go quiet; returns the server's log. */
export const main = (
  options: PresenceOptions = { pingEvery: "1 second", missedPings: 3 }
): Effect.Effect<ReadonlyArray<string>, UDPConnection.ConnectError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const log: Array<string> = []
      const say = (line: string) =>
        Effect.andThen(
          Console.log(line),
          Effect.sync(() => log.push(line))
        )
      const bothGone = yield* Deferred.make<void>()
      let gone = 0

      const presence = Effect.gen(function* () {
        const name = text((yield* UDPConnection.datagram).payload).replace(/^hello /, "")
        yield* say(`server: ${name} is here`)
        yield* Effect.addFinalizer(() =>
          Effect.andThen(
            say(`server: ${name} went quiet, conversation ended`),
            ++gone === 2 ? Deferred.succeed(bothGone, undefined) : Effect.void
          )
        )
        yield* Connection.send(`welcome ${name}`)
        yield* ConnectedLoop.forkChild(
          Effect.forever(Effect.andThen(Effect.sleep(options.pingEvery), Connection.send("ping"))),
          { label: `pinger ${name}` }
        )
        while (true) {
          const message = text((yield* UDPConnection.datagram).payload)
          yield* say(`server: ${message} from ${name}`)
        }
      }).pipe(Effect.scoped)

      const stats = yield* Effect.scoped(
        Effect.gen(function* () {
          const server = yield* UDPConnection.make({
            port: 0,
            host: "127.0.0.1",
            handler: presence,
            idleTimeout: Duration.times(Duration.fromInputUnsafe(options.pingEvery), options.missedPings)
          })
          const port = server.localAddress.port

          const peer = (name: string, pongs: number) =>
            UDPConnection.connect(
              { host: "127.0.0.1", port },
              Effect.gen(function* () {
                yield* Connection.send(`hello ${name}`)
                yield* Console.log(`${name}: ${text((yield* UDPConnection.datagram).payload)}`)
                for (let i = 1; i <= pongs; i++) {
                  yield* UDPConnection.datagram
                  yield* Connection.send(`pong ${i}`)
                }
                yield* Console.log(`${name}: going quiet`)
              })
            )

          yield* Effect.all([peer("alice", 3), peer("bob", 1)], { concurrency: "unbounded", discard: true })
          yield* Deferred.await(bothGone)
          return server.stats
        })
      ) // the server is closed here, after both conversations have finished
      yield* say(`server: ${stats.ended.idle} conversations ended idle, ${stats.live} live`)
      return log
    })
  )

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  NodeRuntime.runMain(main())
}
