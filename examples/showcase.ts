/**
 * The showcase: a tiny game lobby, written as conversations.
 *
 * - A TCP scoreboard service: one conversation per connection, a line protocol (`ADD name points` →
 *   `TOTAL name n`).
 * - A UDP game server: one conversation per player (peer). Each conversation forks a child that sends the
 *   player a `tick` every 100 ms, keeps its own TCP connection to the scoreboard and talks to it through a
 *   client call scope — inside the UDP conversation — and hears the other players' scores through an event.
 *   When a player goes quiet, the idle timeout ends its conversation (and its children).
 * - Three players, as UDP client conversations, each scoring a few times, then going quiet.
 *
 * Everything runs in one process, prints what happens, shuts down gracefully and exits 0.
 *
 *   pnpm demo
 */
import { Application, ConnectedLoop, Connection, Event, Loop, Receive } from "@diesel/core"
import { TCPClient, TCPService } from "@diesel/tcp"
import { UDPConnection } from "@diesel/udp"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Fiber, Layer } from "effect"

const text = Receive.text

/** Fired by a player's conversation whenever that player scores; every other conversation relays it. */
const scored = Event.make<{ readonly player: string; readonly total: number }>("lobby/scored")

/** The scoreboard: `ADD name points` → `TOTAL name n`, one line at a time, until the peer closes. */
const totals = new Map<string, number>()
const scoreboard = Effect.gen(function* () {
  while (true) {
    const line = text(yield* Receive.untilEol({ maxBytes: 256 })).trim()
    const [verb, name = "?", points = "0"] = line.split(" ")
    if (verb !== "ADD") {
      yield* Connection.send(`ERR unknown command\r\n`)
      continue
    }
    const total = (totals.get(name) ?? 0) + Number.parseInt(points, 10)
    totals.set(name, total)
    yield* Connection.send(`TOTAL ${name} ${total}\r\n`)
  }
}).pipe(Effect.catchTag("ConnectionClosedError", () => Effect.void))

/** One player's conversation on the game server. */
const player = Effect.gen(function* () {
  const name = text((yield* UDPConnection.datagram).payload).replace(/^join /, "")
  yield* Loop.label(`player ${name}`)
  yield* Console.log(`game: ${name} joined`)
  yield* Effect.addFinalizer(() => Console.log(`game: ${name} went quiet; conversation over`))

  // our own connection to the scoreboard, closed with this conversation
  const { port } = yield* TCPService.TCPService
  const board = yield* TCPClient.connect({ host: "127.0.0.1", port })
  const addScore = (points: number) =>
    TCPClient.call(
      board,
      Effect.gen(function* () {
        yield* Connection.send(`ADD ${name} ${points}\r\n`)
        return Number.parseInt(
          text(yield* Receive.untilEol())
            .trim()
            .split(" ")[2] ?? "0",
          10
        )
      })
    )

  yield* Connection.send(`welcome ${name}`)
  yield* ConnectedLoop.forkChild(Effect.forever(Effect.andThen(Effect.sleep("100 millis"), Connection.send("tick"))), {
    label: `ticker ${name}`
  })
  while (true) {
    const next = yield* Event.first({ receive: UDPConnection.datagramOp, waits: [scored] })
    if (next._tag === "Wait") {
      if (next.value.player !== name) yield* Connection.send(`${next.value.player} has ${next.value.total}`)
      continue
    }
    if (next._tag !== "Receive") continue
    const points = Number.parseInt(text(next.value.payload).replace(/^score /, ""), 10)
    const total = yield* addScore(points)
    yield* Connection.send(`total ${total}`)
    yield* Event.fire(scored, { player: name, total })
  }
}).pipe(Effect.scoped)

/** A player client: join, score a few times (reading whatever the server says), then go quiet. */
const client = (port: number, name: string, scores: ReadonlyArray<number>) =>
  UDPConnection.connect(
    { host: "127.0.0.1", port },
    Effect.gen(function* () {
      yield* Connection.send(`join ${name}`)
      const heard: Array<string> = []
      const hear = Effect.gen(function* () {
        const line = text((yield* UDPConnection.datagram).payload)
        if (line !== "tick") heard.push(line)
        return line
      })
      yield* hear
      for (const points of scores) {
        yield* Connection.send(`score ${points}`)
        while (!(yield* hear).startsWith("total ")) {
          // ticks and other players' news arrive in between
        }
        yield* Effect.sleep("50 millis")
      }
      yield* Console.log(`${name}: heard ${heard.join(" | ")}`)
    })
  )

const services = UDPConnection.layer({ port: 0, host: "127.0.0.1", handler: player, idleTimeout: "300 millis" }).pipe(
  Layer.provideMerge(TCPService.layer({ port: 0, host: "127.0.0.1", handler: scoreboard, name: "scoreboard" }))
)

/** Run the lobby: start both services, play, show the live loops, stop gracefully. */
const main = Application.run({
  services,
  drainTimeout: "2 seconds",
  setup: Effect.gen(function* () {
    const game = yield* UDPConnection.UDPSocket
    const board = yield* TCPService.TCPService
    yield* Console.log(`scoreboard: TCP on 127.0.0.1:${board.port}; game: UDP on 127.0.0.1:${game.localAddress.port}`)
    const port = game.localAddress.port
    const match = yield* Effect.forkChild(
      Effect.all([client(port, "ada", [3, 4, 5]), client(port, "grace", [10, 1]), client(port, "linus", [7])], {
        concurrency: "unbounded"
      })
    )
    yield* Effect.sleep("150 millis")
    yield* Console.log(`\nlive loops mid-game:\n${yield* Loop.render}\n`)
    yield* Fiber.join(match)
    yield* Effect.sleep("600 millis")
    yield* Console.log(
      `final totals: ${[...totals].map(([n, t]) => `${n}=${t}`).join(", ")}; game conversations now: ${yield* game.size}`
    )
    yield* Application.stop
  })
})

NodeRuntime.runMain(main)
