/**
 * UDP echo: a server that runs one conversation per peer and echoes every datagram back, and two clients
 * that each run one conversation with it.
 *
 *   pnpm exec tsx --conditions=@diesel/source examples/udp-echo.ts
 */
import { pathToFileURL } from "node:url"
import { Connection } from "@diesel/core"
import { UDPConnection } from "@diesel/udp"
import { NodeRuntime } from "@effect/platform-node"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as NetAddress from "effect/net/NetAddress"

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)

/** The server's conversation with one peer: echo until the peer says "bye". */
const echo = Effect.gen(function* () {
  const peer = NetAddress.formatInet(yield* UDPConnection.peer)
  yield* Console.log(`server: conversation with ${peer} started`)
  while (true) {
    const datagram = yield* UDPConnection.datagram
    yield* Connection.send(datagram.payload)
    if (text(datagram.payload) === "bye") break
  }
  yield* Console.log(`server: conversation with ${peer} ended`)
})

/** A client's conversation with the server: send each line, read its echo. */
const client = (name: string, lines: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const heard: Array<string> = []
    for (const line of [...lines, "bye"]) {
      yield* Connection.send(line)
      const reply = text((yield* UDPConnection.datagram).payload)
      yield* Console.log(`${name}: sent ${JSON.stringify(line)}, got ${JSON.stringify(reply)}`)
      heard.push(reply)
    }
    return heard
  })

/** Start the server, run two clients against it, stop. Returns what each client heard. */
export const main: Effect.Effect<
  { readonly alice: ReadonlyArray<string>; readonly bob: ReadonlyArray<string>; readonly conversations: number },
  UDPConnection.ConnectError
> = Effect.scoped(
  Effect.gen(function* () {
    const server = yield* UDPConnection.make({ port: 0, host: "127.0.0.1", handler: echo })
    const port = server.localAddress.port
    yield* Console.log(`server: listening on ${NetAddress.formatInet(server.localAddress)}`)
    const [alice, bob] = yield* Effect.all(
      [
        UDPConnection.connect({ host: "localhost", port, family: "ipv4" }, client("alice", ["hello", "how are you?"])),
        UDPConnection.connect({ host: "127.0.0.1", port }, client("bob", ["ping"]))
      ],
      { concurrency: "unbounded" }
    )
    yield* Console.log(`server: ${server.stats.started} conversations, ${server.stats.datagramsIn} datagrams echoed`)
    return { alice, bob, conversations: server.stats.started }
  })
)

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  NodeRuntime.runMain(main)
}
