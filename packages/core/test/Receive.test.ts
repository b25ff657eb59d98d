import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Connection, Event, Receive, TestConnection } from "../src/index.js"

const text = Receive.text

describe("Receive", () => {
  it.effect("until includes the sentinel and leaves the rest buffered", () =>
    Effect.gen(function* () {
      const peer = TestConnection.stream()
      peer.write("HELO a\r\nHELO b\r\nrest")
      const [a, b, rest] = yield* Effect.all([Receive.untilEol(), Receive.untilEol(), Receive.receive(4)]).pipe(
        Connection.withConnection(peer.connection)
      )
      expect([text(a), text(b), text(rest)]).toEqual(["HELO a\r\n", "HELO b\r\n", "rest"])
    })
  )

  it.effect("waits for more input across chunks, one byte at a time", () =>
    Effect.gen(function* () {
      const peer = TestConnection.stream()
      const fiber = yield* Effect.forkChild(
        Receive.until("END").pipe(Effect.map(text), Connection.withConnection(peer.connection)),
        { startImmediately: true }
      )
      for (const byte of "hello END") {
        peer.write(byte)
        yield* Effect.yieldNow
      }
      expect(yield* Fiber.join(fiber)).toBe("hello END")
    })
  )

  it.effect("receive(n) beyond its limit fails with LimitExceededError before buffering, per call too", () =>
    Effect.gen(function* () {
      const peer = TestConnection.stream()
      peer.write("0123456789")
      peer.end()
      // a peer-declared length of 1 GiB: refused at once, not buffered until the peer closes
      const huge = yield* Receive.receive(1024 * 1024 * 1024).pipe(
        Connection.withConnection(peer.connection),
        Effect.flip
      )
      assert(huge._tag === "LimitExceededError")
      expect(huge.limit).toBe(Receive.DEFAULT_MAX_BYTES)
      const small = yield* Receive.receive(8, { maxBytes: 4 }).pipe(
        Connection.withConnection(peer.connection),
        Effect.flip
      )
      assert(small._tag === "LimitExceededError")
      expect(small.limit).toBe(4)
      // nothing was consumed: a bounded receive still gets the bytes
      const ok = yield* Receive.receive(10, { maxBytes: 10 }).pipe(Connection.withConnection(peer.connection))
      expect(text(ok)).toBe("0123456789")
    })
  )

  it.effect("a line longer than the limit fails with LimitExceededError and consumes nothing", () =>
    Effect.gen(function* () {
      const peer = TestConnection.stream()
      peer.write("x".repeat(100))
      const error = yield* Receive.untilEol({ maxBytes: 64 }).pipe(
        Connection.withConnection(peer.connection),
        Effect.flip
      )
      assert(error._tag === "LimitExceededError")
      expect(error.limit).toBe(64)
      expect(error.buffered).toBe(100)
      const all = yield* Receive.receiveAny({ maxBytes: 1000 }).pipe(Connection.withConnection(peer.connection))
      expect(all.byteLength).toBe(100)
    })
  )

  it.effect("the peer closing mid-receive fails with the buffered bytes", () =>
    Effect.gen(function* () {
      const peer = TestConnection.stream()
      peer.write("partial li")
      peer.end()
      const error = yield* Receive.untilEol().pipe(Connection.withConnection(peer.connection), Effect.flip)
      assert(error._tag === "ConnectionClosedError")
      expect(error.reason).toBe("eof")
      expect(text(error.buffered)).toBe("partial li")
    })
  )

  it.effect("receive without a current connection is a typed error", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Receive.untilEol())
      expect(error._tag).toBe("NoConnectionError")
      expect(error.message).toContain("no current connection")
    })
  )

  it.effect("stream operations on a datagram conversation are unsupported, and vice versa", () =>
    Effect.gen(function* () {
      const udp = TestConnection.datagrams()
      const stream = TestConnection.stream()
      const a = yield* Receive.untilEol().pipe(Connection.withConnection(udp.connection), Effect.flip)
      const b = yield* Receive.datagram.pipe(Connection.withConnection(stream.connection), Effect.flip)
      expect([a._tag, b._tag]).toEqual(["UnsupportedReceiveError", "UnsupportedReceiveError"])
    })
  )

  it.effect("datagrams arrive in order, a 0-byte datagram included", () =>
    Effect.gen(function* () {
      const peer = TestConnection.datagrams()
      peer.deliver("one")
      peer.deliver(new Uint8Array(0))
      peer.deliver("three")
      const got = yield* Effect.all([Receive.datagram, Receive.datagram, Receive.datagram]).pipe(
        Connection.withConnection(peer.connection)
      )
      expect(got.map((d) => text(d.payload))).toEqual(["one", "", "three"])
    })
  )
})

describe("Event.first", () => {
  it.effect("a receive that loses to a sleep consumes nothing; the full line is read after", () =>
    Effect.gen(function* () {
      const peer = TestConnection.stream()
      peer.write("half a li")
      const fiber = yield* Effect.forkChild(
        Event.first({ receive: Receive.untilEolOp(), sleep: "1 second" }).pipe(
          Connection.withConnection(peer.connection)
        ),
        { startImmediately: true }
      )
      yield* TestClock.adjust("1 second")
      const outcome = yield* Fiber.join(fiber)
      expect(outcome._tag).toBe("Sleep")
      peer.write("ne\r\n")
      const line = yield* Receive.untilEol().pipe(Connection.withConnection(peer.connection))
      expect(text(line)).toBe("half a line\r\n")
    })
  )

  it.effect("buffered data wins at once, before any sleep or event", () =>
    Effect.gen(function* () {
      const peer = TestConnection.stream()
      peer.write("ready\r\n")
      const outcome = yield* Event.first({ receive: Receive.untilEolOp(), sleep: 0, waits: ["never"] }).pipe(
        Connection.withConnection(peer.connection)
      )
      assert(outcome._tag === "Receive")
      expect(text(outcome.value)).toBe("ready\r\n")
    })
  )

  it.effect("an event beats a receive, and the receive consumes nothing", () =>
    Effect.gen(function* () {
      const stop = Event.make<string>("stop")
      const peer = TestConnection.stream()
      const fiber = yield* Effect.forkChild(
        Event.first({ receive: Receive.untilEolOp(), waits: [stop] }).pipe(Connection.withConnection(peer.connection)),
        { startImmediately: true }
      )
      peer.write("partial")
      yield* Effect.yieldNow
      expect(yield* Event.fire(stop, "now")).toBe(1)
      const outcome = yield* Fiber.join(fiber)
      assert(outcome._tag === "Wait")
      expect(outcome.event).toBe(stop)
      expect(outcome.value).toBe("now")
      peer.write("\r\n")
      expect(text(yield* Receive.untilEol().pipe(Connection.withConnection(peer.connection)))).toBe("partial\r\n")
    })
  )

  it.effect("a receive completed by new data wins", () =>
    Effect.gen(function* () {
      const peer = TestConnection.datagrams()
      const fiber = yield* Effect.forkChild(
        Event.first({ receive: Receive.datagramOp, sleep: "1 minute", waits: ["x"] }).pipe(
          Connection.withConnection(peer.connection)
        ),
        { startImmediately: true }
      )
      peer.deliver("hi")
      const outcome = yield* Fiber.join(fiber)
      assert(outcome._tag === "Receive")
      expect(text(outcome.value.payload)).toBe("hi")
      expect(peer.mailbox.size).toBe(0)
    })
  )

  it.effect("the first of several events wins and its waits are removed", () =>
    Effect.gen(function* () {
      const hub = new Event.Hub()
      const fiber = yield* Effect.forkChild(
        Event.first({ waits: ["a", "b", "c"] }).pipe(Effect.provideService(Event.CurrentHub, hub)),
        {
          startImmediately: true
        }
      )
      expect(hub.size).toBe(3)
      yield* Event.fire("b", 2).pipe(Effect.provideService(Event.CurrentHub, hub))
      const outcome = yield* Fiber.join(fiber)
      assert(outcome._tag === "Wait")
      expect([outcome.event, outcome.value]).toEqual(["b", 2])
      expect(hub.size).toBe(0)
    })
  )

  it.effect("first without a connection fails when given a receive", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Event.first({ receive: Receive.untilEolOp() }))
      expect(error._tag).toBe("NoConnectionError")
    })
  )

  it.effect("interrupting first removes its waits", () =>
    Effect.gen(function* () {
      const hub = new Event.Hub()
      const fiber = yield* Effect.forkChild(
        Event.first({ waits: ["a"], sleep: "1 hour" }).pipe(Effect.provideService(Event.CurrentHub, hub)),
        {
          startImmediately: true
        }
      )
      yield* Fiber.interrupt(fiber)
      expect(Exit.hasInterrupts(yield* Fiber.await(fiber))).toBe(true)
      expect(hub.size).toBe(0)
    })
  )
})
