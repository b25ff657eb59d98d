import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Ref } from "effect"
import * as DatagramSocket from "effect/socket/DatagramSocket"
import { TestClock } from "effect/testing"
import { Rule, SimNetwork } from "../src/index.js"
import { bytes, inet, text, udpEcho, udpSocket } from "./helpers.js"

const sim = (options?: SimNetwork.Options) =>
  Effect.provide(SimNetwork.layer({ seed: 7, hosts: ["a", "b"], ...options }))

/** A receiver on host b, port 5000, collecting payloads as text. */
const collector = Effect.gen(function* () {
  const received = yield* Ref.make<Array<string>>([])
  const socket = yield* SimNetwork.onHost("b")(udpSocket({ bind: { port: 5000 }, receiveBuffer: { capacity: 4096 } }))
  yield* Effect.forkScoped(
    Effect.forever(
      Effect.flatMap(socket.reader.pull, (batch) =>
        Ref.update(received, (all) => [...all, ...batch.map((d) => text(d.payload))])
      )
    ).pipe(Effect.ignore)
  )
  return received
})

/** Send `n` numbered datagrams from host a to b:5000. */
const sendNumbered = (n: number, size = 0) =>
  Effect.gen(function* () {
    const sim = yield* SimNetwork.SimNetwork
    const b = yield* sim.host("b")
    const socket = yield* SimNetwork.onHost("a")(udpSocket())
    const target = inet(b.ipv4[0] ?? "", 5000)
    for (let i = 0; i < n; i++) {
      yield* socket.writer.write({ payload: String(i).padEnd(size, "."), address: target })
    }
  })

const inversions = (values: ReadonlyArray<string>): number => {
  let count = 0
  for (let i = 1; i < values.length; i++)
    if (Number.parseInt(values[i] ?? "", 10) < Number.parseInt(values[i - 1] ?? "", 10)) count++
  return count
}

describe("simulated UDP faults", () => {
  it.effect("loss drops about the configured share, and the stats and trace agree", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("a", "b", { latency: "5 millis", loss: 0.2 })
      const received = yield* collector
      yield* sendNumbered(1000)
      yield* sim.runUntilIdle()
      const got = (yield* Ref.get(received)).length
      const stats = yield* sim.stats
      assert.isAbove(got, 740)
      assert.isBelow(got, 860)
      assert.strictEqual(stats.dropped.loss, 1000 - got)
      const drops = (yield* sim.trace).filter((event) => event.kind === "drop" && event.reason === "loss")
      assert.strictEqual(drops.length, 1000 - got)
    }).pipe(sim())
  )

  it.effect("duplication delivers some datagrams twice", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("a", "b", { latency: "1 millis", duplicate: 0.1 })
      const received = yield* collector
      yield* sendNumbered(1000)
      yield* sim.runUntilIdle()
      const got = yield* Ref.get(received)
      assert.isAbove(got.length, 1060)
      assert.isBelow(got.length, 1140)
      assert.strictEqual(new Set(got).size, 1000)
      assert.strictEqual((yield* sim.stats).duplicated, got.length - 1000)
    }).pipe(sim())
  )

  it.effect("jitter alone keeps order; reordering reorders", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("a", "b", { latency: "10 millis", jitter: "5 millis" })
      const received = yield* collector
      yield* sendNumbered(200)
      yield* sim.runUntilIdle()
      const inOrder = yield* Ref.get(received)
      assert.strictEqual(inOrder.length, 200)
      assert.strictEqual(inversions(inOrder), 0)

      yield* Ref.set(received, [])
      yield* sim.link("a", "b", { reorder: 0.2, reorderDelay: "3 millis" })
      const socket = yield* SimNetwork.onHost("a")(udpSocket())
      const b = yield* sim.host("b")
      for (let i = 0; i < 200; i++) {
        yield* socket.writer.write({ payload: String(i), address: inet(b.ipv4[0] ?? "", 5000) })
        yield* TestClock.adjust("1 millis")
      }
      yield* sim.runUntilIdle()
      const shuffled = yield* Ref.get(received)
      assert.strictEqual(shuffled.length, 200)
      assert.isAbove(inversions(shuffled), 10)
    }).pipe(sim())
  )

  it.effect("an MTU drops datagrams bigger than the path, at the right boundary", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("a", "b", { mtu: 576 })
      const received = yield* collector
      const b = yield* sim.host("b")
      const socket = yield* SimNetwork.onHost("a")(udpSocket())
      yield* socket.writer.write({ payload: new Uint8Array(548).fill(65), address: inet(b.ipv4[0] ?? "", 5000) })
      yield* socket.writer.write({ payload: new Uint8Array(549).fill(66), address: inet(b.ipv4[0] ?? "", 5000) })
      yield* sim.runUntilIdle()
      const got = yield* Ref.get(received)
      assert.deepStrictEqual(
        got.map((payload) => payload.length),
        [548]
      )
      const drop = (yield* sim.trace).find((event) => event.kind === "drop")
      assert.strictEqual(drop?.reason, "mtu")
      assert.strictEqual(drop?.packet.payload.byteLength, 549)
    }).pipe(sim())
  )

  it.effect("a datagram over 64 KiB fails the write with MessageTooLarge", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      const b = yield* sim.host("b")
      const socket = yield* SimNetwork.onHost("a")(udpSocket())
      const error = yield* Effect.flip(
        socket.writer.write({ payload: new Uint8Array(65508), address: inet(b.ipv4[0] ?? "", 5000) })
      )
      assert.isTrue(DatagramSocket.isDatagramSocketError(error))
      assert.strictEqual(error.reason._tag, "DatagramSocketWriteError")
      if (error.reason._tag === "DatagramSocketWriteError") assert.strictEqual(error.reason.kind, "MessageTooLarge")
    }).pipe(sim())
  )

  it.effect("partitions: two-way, one-way, repair", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      const a = yield* sim.host("a")
      const b = yield* sim.host("b")
      const onA = yield* SimNetwork.onHost("a")(udpSocket({ bind: { port: 6000 } }))
      const onB = yield* SimNetwork.onHost("b")(udpSocket({ bind: { port: 6000 } }))
      const exchange = Effect.gen(function* () {
        yield* onA.writer.write({ payload: "a->b", address: inet(b.ipv4[0] ?? "", 6000) })
        yield* onB.writer.write({ payload: "b->a", address: inet(a.ipv4[0] ?? "", 6000) })
        yield* sim.runUntilIdle()
        const atB = yield* Effect.timeoutOption(onB.reader.pull, "1 millis").pipe(TestClock.withLive)
        const atA = yield* Effect.timeoutOption(onA.reader.pull, "1 millis").pipe(TestClock.withLive)
        return { atA: atA._tag === "Some", atB: atB._tag === "Some" }
      })
      assert.deepStrictEqual(yield* exchange, { atA: true, atB: true })
      yield* sim.partition("a", "b")
      assert.deepStrictEqual(yield* exchange, { atA: false, atB: false })
      yield* sim.repair("a", "b")
      yield* sim.partitionOneWay("a", "b")
      assert.deepStrictEqual(yield* exchange, { atA: true, atB: false })
      yield* sim.repairAll
      assert.deepStrictEqual(yield* exchange, { atA: true, atB: true })
      const reasons = (yield* sim.trace).filter((event) => event.kind === "drop").map((event) => event.reason)
      assert.deepStrictEqual(reasons, ["partition", "partition", "partition"])
    }).pipe(sim())
  )

  it.effect("a partition also loses the packets already in flight", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("a", "b", { latency: "50 millis" })
      const received = yield* collector
      yield* sendNumbered(3)
      yield* TestClock.adjust("10 millis")
      assert.strictEqual((yield* sim.inFlight).length, 3)
      yield* sim.partition("a", "b")
      yield* sim.runUntilIdle()
      assert.deepStrictEqual(yield* Ref.get(received), [])
      assert.strictEqual((yield* sim.stats).dropped.partition, 3)
    }).pipe(sim())
  )

  it.effect("hold keeps packets in flight until release delivers them in order", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("a", "b", { latency: "5 millis" })
      const received = yield* collector
      yield* sim.hold("a", "b")
      yield* sendNumbered(3)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Ref.get(received), [])
      const inFlight = yield* sim.inFlight
      assert.deepStrictEqual(
        inFlight.map((entry) => [text(entry.packet.payload), entry.held]),
        [
          ["0", true],
          ["1", true],
          ["2", true]
        ]
      )
      yield* sim.release("a", "b")
      yield* sim.runUntilIdle()
      assert.deepStrictEqual(yield* Ref.get(received), ["0", "1", "2"])
      assert.strictEqual((yield* sim.inFlight).length, 0)
    }).pipe(sim())
  )

  it.effect("a crashed host drops traffic and its sockets die; restart re-runs its programs", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("a", "b", { latency: "2 millis" })
      const started = yield* Ref.make(0)
      yield* sim.spawn(
        "b",
        Effect.gen(function* () {
          yield* Ref.update(started, (n) => n + 1)
          yield* udpEcho(7)
          return yield* Effect.never
        }).pipe(Effect.scoped)
      )
      const b = yield* sim.host("b")
      const client = yield* SimNetwork.onHost("a")(udpSocket())
      // UDP style: resend until answered, three tries
      const ask = (payload: string) =>
        sim.run(
          Effect.gen(function* () {
            yield* client.writer.write({ payload, address: inet(b.ipv4[0] ?? "", 7) })
            return yield* Effect.timeoutOption(client.reader.pull, "50 millis")
          }).pipe(Effect.repeat({ until: (reply) => reply._tag === "Some", times: 2 }))
        )
      assert.strictEqual((yield* ask("one"))._tag, "Some")
      yield* sim.crash("b")
      assert.strictEqual((yield* ask("two"))._tag, "None")
      assert.isAbove((yield* sim.stats).dropped["host-down"], 0)
      yield* sim.restart("b")
      const three = yield* ask("three")
      assert.strictEqual(three._tag === "Some" ? text(three.value[0].payload) : "", "three")
      assert.strictEqual(yield* Ref.get(started), 2)
    }).pipe(sim())
  )

  it.effect("a socket on a crashed host fails its pending pull", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      const socket = yield* SimNetwork.onHost("b")(udpSocket())
      const pull = yield* Effect.forkChild(Effect.flip(socket.reader.pull), { startImmediately: true })
      yield* sim.crash("b")
      const error = yield* Fiber.join(pull)
      assert.strictEqual(error.reason._tag, "DatagramSocketClosedError")
    }).pipe(sim())
  )

  it.effect("rules drop and delay chosen packets", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      yield* sim.link("a", "b", { latency: "1 millis" })
      const received = yield* collector
      yield* sim.rule(Rule.when((packet) => text(packet.payload) === "1", Rule.drop))
      yield* sim.rule(Rule.when((packet) => text(packet.payload) === "0", Rule.delay("10 millis")))
      yield* sendNumbered(3)
      yield* TestClock.adjust("5 millis")
      assert.deepStrictEqual(yield* Ref.get(received), ["2"])
      yield* sim.runUntilIdle()
      assert.deepStrictEqual(yield* Ref.get(received), ["2", "0"])
      assert.strictEqual((yield* sim.stats).dropped.rule, 1)
    }).pipe(sim())
  )

  it.effect("a connected socket only hears its peer and learns of an unreachable port", () =>
    Effect.gen(function* () {
      const sim = yield* SimNetwork.SimNetwork
      const errors = yield* Ref.make<Array<string>>([])
      const b = yield* sim.host("b")
      const connected = yield* SimNetwork.onHost("a")(
        udpSocket({
          connect: { address: "b", port: 5000 },
          onError: (error) => {
            Effect.runSync(Ref.update(errors, (all) => [...all, error.reason._tag]))
          }
        })
      )
      yield* connected.writer.write({ payload: "nobody home" })
      yield* sim.runUntilIdle()
      assert.deepStrictEqual(yield* Ref.get(errors), ["DatagramSocketReadError"])
      assert.strictEqual(b.ipv4.length, 1)
    }).pipe(sim())
  )

  it.effect("the same seed gives the same trace hash; another seed another", () =>
    Effect.gen(function* () {
      const scenario = (seed: number) =>
        Effect.gen(function* () {
          const sim = yield* SimNetwork.SimNetwork
          yield* sim.link("a", "b", {
            latency: { _tag: "Normal", meanMillis: 20, stddevMillis: 5 },
            jitter: "2 millis",
            loss: 0.1,
            duplicate: 0.05,
            reorder: 0.1
          })
          yield* SimNetwork.onHost("b")(udpEcho(7))
          const b = yield* sim.host("b")
          const client = yield* SimNetwork.onHost("a")(udpSocket())
          for (let i = 0; i < 200; i++) {
            yield* client.writer.write({ payload: bytes(`m${i}`), address: inet(b.ipv4[0] ?? "", 7) })
          }
          yield* sim.runUntilIdle()
          return yield* sim.traceHash
        }).pipe(
          Effect.scoped,
          Effect.provide(Layer.provideMerge(SimNetwork.layer({ seed, hosts: ["a", "b"] }), TestClock.layer()))
        )
      const first = yield* scenario(1)
      const again = yield* scenario(1)
      const other = yield* scenario(2)
      assert.strictEqual(first, again)
      assert.notStrictEqual(first, other)
    })
  )
})
