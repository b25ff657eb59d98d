/**
 * diesel's `combined.py`: a TCP echo service and a client in one process, 5,000 round trips through
 * the client's call scope.
 *
 *   pnpm exec tsx --conditions=@diesel/source examples/tcp-combined.ts
 */

import { Connection, Receive, TCPClient, TCPService } from "@diesel/tcp"
import { NodeRuntime } from "@effect/platform-node"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"

const ROUND_TRIPS = 5_000

const echo = Effect.forever(Effect.flatMap(Receive.untilEol(), Connection.send))

/** A client method, diesel's `@call`: it runs with the client's connection current. */
const ping = (client: Connection.Connection, n: number) =>
  TCPClient.call(
    client,
    Effect.gen(function* () {
      yield* Connection.send(`ping ${n}\r\n`)
      const reply = Receive.text(yield* Receive.untilEol())
      if (reply !== `ping ${n}\r\n`) return yield* Effect.die(`round trip ${n}: got ${reply}`)
    })
  )

const main = Effect.gen(function* () {
  const service = yield* TCPService.make({ host: "127.0.0.1", port: 0, handler: echo })
  const client = yield* TCPClient.connect({ host: "127.0.0.1", port: service.port })
  const start = yield* Clock.currentTimeMillis
  for (let n = 0; n < ROUND_TRIPS; n++) yield* ping(client, n)
  const elapsed = (yield* Clock.currentTimeMillis) - start
  yield* Effect.log(`combined: ${ROUND_TRIPS} round trips in ${elapsed} ms`)
}).pipe(Effect.scoped)

if (import.meta.url === `file://${process.argv[1]}`) NodeRuntime.runMain(main)
