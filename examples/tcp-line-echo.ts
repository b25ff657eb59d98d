/**
 * Line echo: diesel's `echo.py`. Every CRLF line a client sends comes back.
 *
 *   pnpm exec tsx --conditions=@diesel/source examples/tcp-line-echo.ts            # demo: serve, talk, exit
 *   pnpm exec tsx --conditions=@diesel/source examples/tcp-line-echo.ts --serve 7000   # serve until Ctrl-C
 */

import { Connection, Receive, TCPClient, TCPService } from "@diesel/tcp"
import { NodeRuntime } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** The conversation: one per connection, with that connection current. */
export const echo = Effect.forever(
  Effect.gen(function* () {
    const line = yield* Receive.untilEol({ maxBytes: 8 * 1024 })
    yield* Connection.send(line)
  })
)

/** Serve, send three lines as a client, check the answers, stop. */
const demo = Effect.gen(function* () {
  const service = yield* TCPService.make({ host: "127.0.0.1", port: 0, handler: echo })
  const client = yield* TCPClient.connect({ host: "127.0.0.1", port: service.port })
  for (const text of ["hello", "diesel", "bye"]) {
    const reply = yield* TCPClient.call(client, Effect.andThen(Connection.send(`${text}\r\n`), Receive.untilEol()))
    yield* Effect.log(`echoed: ${Receive.text(reply).trimEnd()}`)
    if (Receive.text(reply) !== `${text}\r\n`) return yield* Effect.die(`unexpected reply ${Receive.text(reply)}`)
  }
  yield* Effect.log("line echo: ok")
}).pipe(Effect.scoped)

const serveIndex = process.argv.indexOf("--serve")
if (serveIndex >= 0) {
  const port = Number(process.argv[serveIndex + 1] ?? 7000)
  NodeRuntime.runMain(Layer.launch(TCPService.layer({ port, handler: echo })))
} else if (import.meta.url === `file://${process.argv[1]}`) {
  NodeRuntime.runMain(demo)
}
