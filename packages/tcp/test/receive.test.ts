import { Connection, Event, Receive } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import { TCPConnection, TCPService } from "../src/index.js"
import { fakeSocket, onBothNetworks, peerConnect, rawConnect, rawWrite, splitAt, text } from "./helpers.js"

const encoder = new TextEncoder()

/** Read CRLF lines until the peer closes; return them (without CRLF) and the unread tail. */
const readLines = Effect.gen(function* () {
  const lines: Array<string> = []
  while (true) {
    const result = yield* Effect.result(Receive.untilEol({ maxBytes: 1 << 20 }))
    if (result._tag === "Success") {
      lines.push(text(result.success).slice(0, -2))
      continue
    }
    const error = result.failure
    if (error._tag === "ConnectionClosedError") return { lines, tail: text(error.buffered), reason: error.reason }
    return yield* Effect.die(error)
  }
})

describe("receive over a chunked byte stream", () => {
  it.effect.prop(
    "any chunking of the byte stream gives the same lines",
    {
      lines: Schema.Array(Schema.String),
      tail: Schema.String,
      cuts: Schema.Array(Schema.Int).check(Schema.isMinLength(8))
    },
    ({ lines, tail, cuts }) =>
      Effect.gen(function* () {
        // (round-tripped through UTF-8 so that lone surrogates compare equal)
        const clean = lines.map((line) => text(encoder.encode(line.replace(/[\r\n]/g, "."))))
        const cleanTail = text(encoder.encode(tail.replace(/[\r\n]/g, ".")))
        const bytes = encoder.encode(clean.map((line) => `${line}\r\n`).join("") + cleanTail)
        const { socket } = fakeSocket(splitAt(bytes, cuts.map(Math.abs)))
        const connection = yield* TCPConnection.make({ socket, role: "server" })
        const result = yield* Connection.withConnection(readLines, connection)
        assert.deepStrictEqual(result.lines, clean)
        assert.strictEqual(result.tail, cleanTail)
        assert.strictEqual(result.reason, "eof")
      }).pipe(Effect.scoped)
  )

  it.effect.prop(
    "any chunking gives the same length-prefixed frames",
    { frames: Schema.Array(Schema.Uint8Array), cuts: Schema.Array(Schema.Int).check(Schema.isMinLength(8)) },
    ({ frames, cuts }) =>
      Effect.gen(function* () {
        const small = frames.map((frame) => frame.subarray(0, 255))
        const parts: Array<number> = []
        for (const frame of small) parts.push(frame.byteLength, ...frame)
        const { socket } = fakeSocket(splitAt(Uint8Array.from(parts), cuts.map(Math.abs)))
        const connection = yield* TCPConnection.make({ socket, role: "server" })
        const got: Array<Array<number>> = []
        for (let i = 0; i < small.length; i++) {
          const header = yield* Connection.withConnection(Receive.receive(1), connection)
          const body = yield* Connection.withConnection(Receive.receive(header[0] ?? 0), connection)
          got.push([...body])
        }
        assert.deepStrictEqual(
          got,
          small.map((frame) => [...frame])
        )
      }).pipe(Effect.scoped)
  )
})

/** Start a service whose conversations report to `results`. */
const serve = <A, E>(handler: Effect.Effect<A, E>, host = "127.0.0.1") =>
  Effect.gen(function* () {
    const results = yield* Queue.unbounded<Exit.Exit<A, E>>()
    const service = yield* TCPService.make({
      host,
      port: 0,
      handler: Effect.flatMap(Effect.exit(handler), (exit) => Queue.offer(results, exit))
    })
    return { service, results }
  })

onBothNetworks("TCPService conversations on loopback", (live) => {
  for (const host of ["127.0.0.1", "::1"]) {
    live(`line echo on ${host}, port 0 reports the bound port`, () =>
      Effect.gen(function* () {
        const { service } = yield* serve(Effect.forever(Effect.flatMap(Receive.untilEol(), Connection.send)), host)
        assert.isAbove(service.port, 0)
        const client = yield* peerConnect(service.port, host)
        yield* client.write("hello\r\nwor")
        yield* client.write("ld\r\n")
        const echoed = yield* client.read(14)
        assert.strictEqual(echoed.toString(), "hello\r\nworld\r\n")
      })
    )
  }

  live("a peer that sends one byte at a time", () =>
    Effect.gen(function* () {
      const { service, results } = yield* serve(
        Effect.gen(function* () {
          const a = yield* Receive.untilEol()
          const b = yield* Receive.receive(5)
          const c = yield* Receive.until("END")
          return [text(a), text(b), text(c)]
        })
      )
      const client = yield* peerConnect(service.port)
      for (const byte of encoder.encode("first line\r\n12345 the rest END")) yield* client.write(Uint8Array.of(byte))
      const exit = yield* Queue.take(results)
      assert.deepStrictEqual(exit, Exit.succeed(["first line\r\n", "12345", " the rest END"]))
    })
  )

  live("the peer closing mid-receive fails with the buffered bytes", () =>
    Effect.gen(function* () {
      const { service, results } = yield* serve(Receive.untilEol())
      const client = yield* peerConnect(service.port)
      yield* client.write("partial line")
      yield* client.end
      const exit = yield* Queue.take(results)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      assert.strictEqual(error?._tag, "Fail")
      if (error?._tag === "Fail" && error.error._tag === "ConnectionClosedError") {
        assert.strictEqual(error.error.reason, "eof")
        assert.strictEqual(text(error.error.buffered), "partial line")
      } else assert.fail(`unexpected ${String(error)}`)
    })
  )

  live("a line longer than the limit fails with LimitExceededError, and the conversation goes on", () =>
    Effect.gen(function* () {
      const { service } = yield* serve(
        Effect.gen(function* () {
          const result = yield* Effect.result(Receive.untilEol({ maxBytes: 16 }))
          if (result._tag === "Failure" && result.failure._tag === "LimitExceededError") {
            yield* Connection.send(`ERR limit ${result.failure.limit}\r\n`)
          }
        })
      )
      const client = yield* peerConnect(service.port)
      yield* client.write("x".repeat(100))
      const reply = yield* client.read(14)
      assert.strictEqual(reply.toString(), "ERR limit 16\r\n")
    })
  )

  live("first(untilEol, sleep) that loses consumes nothing; the full line is read after", () =>
    Effect.gen(function* () {
      const lost = yield* Deferred.make<string>()
      const { service, results } = yield* serve(
        Effect.gen(function* () {
          const outcome = yield* Event.first({ receive: Receive.untilEolOp(), sleep: "20 millis" })
          yield* Deferred.succeed(lost, outcome._tag)
          return text(yield* Receive.untilEol())
        })
      )
      const client = yield* peerConnect(service.port)
      yield* client.write("hel")
      assert.strictEqual(yield* Deferred.await(lost), "Sleep")
      yield* client.write("lo\r\n")
      assert.deepStrictEqual(yield* Queue.take(results), Exit.succeed("hello\r\n"))
    })
  )

  live("a parent and a child receiving at once share the stream without losing bytes", () =>
    Effect.gen(function* () {
      const { service, results } = yield* serve(
        Effect.gen(function* () {
          const child = yield* Effect.forkChild(Effect.replicateEffect(Receive.receive(1), 500))
          const mine = yield* Effect.replicateEffect(Receive.receive(1), 500)
          const theirs = yield* Fiber.join(child)
          return mine.length + theirs.length
        })
      )
      const client = yield* peerConnect(service.port)
      for (let i = 0; i < 10; i++) yield* client.write("y".repeat(100))
      assert.deepStrictEqual(yield* Queue.take(results), Exit.succeed(1000))
    })
  )
})

// node only: a reset (RST) mid-read needs node:net's resetAndDestroy; the seam's close is a FIN or a destroy
describe("TCPService conversations on loopback, raw peers (node)", () => {
  it.live("a peer that resets mid-read", () =>
    Effect.gen(function* () {
      const arrived = yield* Deferred.make<void>()
      const { service, results } = yield* serve(
        Effect.gen(function* () {
          const connection = yield* Connection.current
          const input = connection.input
          if (input._tag !== "ByteInput") return yield* Effect.die("not a stream")
          while (input.buffer.length < 3) yield* Effect.orDie(input.fill)
          yield* Deferred.succeed(arrived, undefined)
          return yield* Receive.untilEol()
        })
      )
      const client = yield* rawConnect(service.port)
      yield* rawWrite(client, "abc")
      yield* Deferred.await(arrived)
      client.resetAndDestroy()
      const exit = yield* Queue.take(results)
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      if (error?._tag === "Fail" && error.error._tag === "ConnectionClosedError") {
        assert.strictEqual(error.error.reason, "reset")
        assert.strictEqual(text(error.error.buffered), "abc")
      } else assert.fail(`unexpected ${String(error)}`)
    })
  )
})
