/**
 * A chat server: each conversation waits for its own next line *or* a line said by anyone else
 * (`Event.first` of a receive and a `wait`), and broadcasts with `fire`. No table of connections: every
 * conversation only ever talks to its own, current, connection.
 *
 * With it, a telnet-style client (`--client host port`) that prints what the server says and sends what
 * you type.
 *
 *   pnpm exec tsx --conditions=@diesel/source examples/tcp-chat.ts                  # demo: alice and bob talk, exit
 *   pnpm exec tsx --conditions=@diesel/source examples/tcp-chat.ts --serve 7000     # serve until Ctrl-C
 *   pnpm exec tsx --conditions=@diesel/source examples/tcp-chat.ts --client 127.0.0.1 7000
 */
import * as Readline from "node:readline"
import { Event } from "@diesel/core"
import { Connection, Receive, TCPClient, TCPService } from "@diesel/tcp"
import { NodeRuntime } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"

/** Somebody said something. */
export const said = Event.make<{ readonly from: string; readonly text: string }>("chat/said")

const line = (text: string) => Connection.send(`${text}\r\n`)
const readLine = (maxBytes: number) => Effect.map(Receive.untilEol({ maxBytes }), (b) => Receive.text(b).trim())

/** One chat conversation. */
export const chat = Effect.gen(function* () {
  yield* line("nick?")
  const nick = yield* readLine(64)
  yield* line(`welcome ${nick}`)
  while (true) {
    const outcome = yield* Event.first({ receive: Receive.untilEolOp({ maxBytes: 1024 }), waits: [said] })
    if (outcome._tag === "Receive") {
      const text = Receive.text(outcome.value).trim()
      if (text === "/quit") return yield* line("bye")
      yield* Event.fire(said, { from: nick, text })
    } else if (outcome._tag === "Wait" && outcome.value.from !== nick) {
      yield* line(`${outcome.value.from}: ${outcome.value.text}`)
    }
  }
})

/** A telnet-style client: print every line from the server, send every line from `input`. */
const telnet = (options: {
  readonly host: string
  readonly port: number
  readonly input: Queue.Dequeue<string, unknown>
  readonly print: (line: string) => Effect.Effect<void>
}) =>
  Effect.gen(function* () {
    const client = yield* TCPClient.connect({ host: options.host, port: options.port, timeout: "5 seconds" })
    const printer = Effect.forever(Effect.flatMap(Receive.untilEol(), (b) => options.print(Receive.text(b).trimEnd())))
    const typist = Effect.forever(Effect.flatMap(Queue.take(options.input), (text) => line(text)))
    // ends when the server closes the connection
    yield* TCPClient.call(
      client,
      Effect.raceFirst(
        Effect.catchTag(printer, "ConnectionClosedError", () => Effect.void),
        Effect.andThen(Effect.ignore(typist), Effect.never)
      )
    )
  }).pipe(Effect.scoped)

/** Serve, let alice and bob talk through the protocol, stop. */
const demo = Effect.gen(function* () {
  const service = yield* TCPService.make({ host: "127.0.0.1", port: 0, handler: chat })
  const join = (nick: string) =>
    Effect.gen(function* () {
      const client = yield* TCPClient.connect({ host: "127.0.0.1", port: service.port })
      const hello = yield* TCPClient.call(
        client,
        Effect.gen(function* () {
          yield* readLine(64)
          yield* line(nick)
          return yield* readLine(1024)
        })
      )
      yield* Effect.log(`${nick} got: ${hello}`)
      return client
    })
  const bob = yield* join("bob")
  const alice = yield* join("alice")
  yield* TCPClient.call(alice, line("hi all"))
  const heard = yield* TCPClient.call(bob, readLine(1024))
  yield* Effect.log(`bob heard: ${heard}`)
  if (heard !== "alice: hi all") return yield* Effect.die(`bob heard ${heard}`)
  for (const client of [alice, bob]) {
    const bye = yield* TCPClient.call(client, Effect.andThen(line("/quit"), readLine(64)))
    if (bye !== "bye") return yield* Effect.die(`expected bye, got ${bye}`)
  }
  yield* Effect.log("chat: ok")
}).pipe(Effect.scoped)

const stdinLines = Effect.gen(function* () {
  const queue = yield* Queue.unbounded<string>()
  const rl = Readline.createInterface({ input: process.stdin })
  rl.on("line", (text) => Queue.offerUnsafe(queue, text))
  yield* Effect.addFinalizer(() => Effect.sync(() => rl.close()))
  return queue
})

const arg = (name: string, offset = 1) => {
  const index = process.argv.indexOf(name)
  return index >= 0 ? process.argv[index + offset] : undefined
}

if (arg("--serve", 0) !== undefined) {
  NodeRuntime.runMain(Layer.launch(TCPService.layer({ port: Number(arg("--serve") ?? 7000), handler: chat })))
} else if (arg("--client", 0) !== undefined) {
  const host = arg("--client") ?? "127.0.0.1"
  const port = Number(arg("--client", 2) ?? 7000)
  NodeRuntime.runMain(
    Effect.scoped(
      Effect.flatMap(stdinLines, (input) =>
        telnet({ host, port, input, print: (text) => Effect.sync(() => process.stdout.write(`${text}\n`)) })
      )
    )
  )
} else if (import.meta.url === `file://${process.argv[1]}`) {
  NodeRuntime.runMain(demo)
}
