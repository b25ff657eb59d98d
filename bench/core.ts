/**
 * Core runtime benchmarks: diesel conversations against the same work done with bare Effect fibers and
 * queues, in one process, side by side.
 *
 * - spawn conversations: start a conversation (its own mailbox with one message waiting), receive the
 *   message, end; `Conversation.run` over an in-memory connection vs `Effect.forkChild` of a fiber that
 *   takes from its own `Queue.bounded`, joined in batches.
 * - mailbox delivery: one producer offers M messages round-robin to K conversations' mailboxes
 *   (backpressure when full), each conversation receives its share with `Receive.datagram`; vs bare
 *   fibers doing `Queue.take` from `Queue.bounded` queues.
 * - idle conversation heap: N conversations alive, each blocked in `Receive.datagram` on its empty
 *   mailbox, vs N bare fibers blocked on `Queue.take`: heap after a full GC, minus the heap before, / N.
 *
 * @since 0.1.0
 */
import { Connection, Conversation, Mailbox, Receive } from "@diesel/core"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as NetAddress from "effect/net/NetAddress"
import * as Queue from "effect/Queue"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import { alternate, type Benchmark, heapUsed, log, now, OURS, type Row, rows, type Subject } from "./Harness.js"

const EFFECT = "effect"

/** Mailbox (and queue) capacity, the same on both sides. */
const CAPACITY = 256

const peer = NetAddress.inetAddressFromIpStringUnsafe("127.0.0.1", 40_000)
const message: DatagramSocket.Datagram = { payload: new Uint8Array(32), address: peer }
const local = NetAddress.inetAddressFromIpStringUnsafe("127.0.0.1", 9_000)

/**
 * A datagram connection with nothing behind it but its mailbox: what a UDP transport builds per peer.
 * A class, not an object literal: tsx (which runs this file) wraps every named closure in a `__name`
 * call that gives it a property array, and that would be charged to each conversation.
 */
class MemoryConnection implements Connection.Connection {
  readonly id = Connection.allocateId()
  readonly transport = "memory"
  readonly localAddress = local
  readonly remoteAddress = peer
  readonly input: Connection.DatagramInput
  readonly close: Effect.Effect<void>

  constructor(mailbox: Mailbox.Mailbox<DatagramSocket.Datagram>) {
    this.input = { _tag: "DatagramInput", mailbox }
    this.close = Effect.sync(() => mailbox.close())
  }

  send(): Effect.Effect<void, Connection.SendError> {
    return Effect.void
  }
}

const memoryConnection = (mailbox: Mailbox.Mailbox<DatagramSocket.Datagram>): Connection.Connection =>
  new MemoryConnection(mailbox)

const newMailbox = (policy: Mailbox.OverflowPolicy) =>
  Mailbox.make<DatagramSocket.Datagram>({ capacity: CAPACITY, policy })

const perSecond = (count: number, millis: number): number => (count * 1000) / millis

const timed = <E>(count: number, effect: Effect.Effect<void, E>): Promise<number> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const start = now()
      yield* effect
      return perSecond(count, now() - start)
    })
  )

const expectCompleted = (ends: ReadonlyArray<Conversation.End>): Effect.Effect<void> => {
  const bad = ends.find((end) => end._tag !== "Completed")
  return bad === undefined ? Effect.void : Effect.die(new Error(`a conversation ended ${bad._tag}`))
}

// ---------------------------------------------------------------------------------------------------------
// (a) spawn conversations

const spawnDiesel = (total: number, batch: number): Effect.Effect<void> =>
  Effect.gen(function* () {
    const fibers: Array<Fiber.Fiber<Conversation.End>> = new Array(batch)
    for (let done = 0; done < total; done += batch) {
      for (let i = 0; i < batch; i++) {
        const mailbox = newMailbox("dropNewest")
        mailbox.offerUnsafe(message)
        fibers[i] = yield* Effect.forkChild(Conversation.run(memoryConnection(mailbox), Receive.datagram))
      }
      yield* expectCompleted(yield* Fiber.joinAll(fibers))
    }
  })

const spawnEffect = (total: number, batch: number): Effect.Effect<void> =>
  Effect.gen(function* () {
    const fibers: Array<Fiber.Fiber<DatagramSocket.Datagram>> = new Array(batch)
    for (let done = 0; done < total; done += batch) {
      for (let i = 0; i < batch; i++) {
        const queue = yield* Queue.bounded<DatagramSocket.Datagram>(CAPACITY)
        Queue.offerUnsafe(queue, message)
        fibers[i] = yield* Effect.forkChild(Queue.take(queue))
      }
      yield* Fiber.joinAll(fibers)
    }
  })

// ---------------------------------------------------------------------------------------------------------
// (b) mailbox delivery

const receiveMany = (count: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < count; i++) yield* Receive.datagram
  })

const deliverDiesel = (messages: number, conversations: number): Effect.Effect<void> =>
  Effect.gen(function* () {
    const share = messages / conversations
    const mailboxes = Array.from({ length: conversations }, () => newMailbox("backpressure"))
    const fibers: Array<Fiber.Fiber<Conversation.End>> = []
    for (const mailbox of mailboxes) {
      fibers.push(yield* Effect.forkChild(Conversation.run(memoryConnection(mailbox), receiveMany(share))))
    }
    for (let i = 0; i < messages; i++) {
      const mailbox = mailboxes[i % conversations]
      if (mailbox !== undefined) yield* mailbox.offer(message)
    }
    yield* expectCompleted(yield* Fiber.joinAll(fibers))
  })

const takeMany = (queue: Queue.Queue<DatagramSocket.Datagram>, count: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < count; i++) yield* Queue.take(queue)
  })

const deliverEffect = (messages: number, conversations: number): Effect.Effect<void> =>
  Effect.gen(function* () {
    const share = messages / conversations
    const queues: Array<Queue.Queue<DatagramSocket.Datagram>> = []
    for (let i = 0; i < conversations; i++) queues.push(yield* Queue.bounded<DatagramSocket.Datagram>(CAPACITY))
    const fibers: Array<Fiber.Fiber<void>> = []
    for (const queue of queues) fibers.push(yield* Effect.forkChild(takeMany(queue, share)))
    for (let i = 0; i < messages; i++) {
      const queue = queues[i % conversations]
      if (queue !== undefined) yield* Queue.offer(queue, message)
    }
    yield* Fiber.joinAll(fibers)
  })

// ---------------------------------------------------------------------------------------------------------
// (c) heap per idle conversation

/**
 * Heap bytes per blocked fiber: `start` forks one (immediately, so it is blocked when `start` returns);
 * measured with all `count` alive, and they are interrupted when the measuring fiber ends.
 */
const heapPerFiber = (count: number, start: () => Effect.Effect<unknown>): Promise<number> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const before = heapUsed()
      for (let i = 0; i < count; i++) yield* start()
      const after = heapUsed()
      return (after - before) / count
    })
  )

const idleDiesel = () =>
  Effect.forkChild(Conversation.run(memoryConnection(newMailbox("dropNewest")), Receive.datagram), {
    startImmediately: true
  })

const idleEffect = () =>
  Effect.flatMap(Queue.bounded<DatagramSocket.Datagram>(CAPACITY), (queue) =>
    Effect.forkChild(Queue.take(queue), { startImmediately: true })
  )

// ---------------------------------------------------------------------------------------------------------

const sizes = (smoke: boolean) =>
  smoke
    ? { rounds: 3, warmup: 1, spawn: 5_000, batch: 1_000, messages: 20_000, mailboxes: 10, idle: 2_000 }
    : { rounds: 7, warmup: 1, spawn: 100_000, batch: 1_000, messages: 1_000_000, mailboxes: 100, idle: 100_000 }

/**
 * @since 0.1.0
 */
export const benchmark: Benchmark = {
  name: "core",
  run: async ({ smoke }) => {
    const n = sizes(smoke)
    const out: Array<Row> = []
    const runCase = async (
      caseName: string,
      unit: string,
      higherIsBetter: boolean,
      subjects: ReadonlyArray<Subject>,
      rounds = n.rounds
    ) => {
      log(`  ${caseName}`)
      const measured = await alternate(rounds, subjects, { warmup: n.warmup, log })
      out.push(...rows(caseName, unit, higherIsBetter, measured))
    }

    await runCase(`spawn ${n.spawn.toLocaleString("en-US")} conversations (batches of ${n.batch})`, "conv/s", true, [
      { name: OURS, run: () => timed(n.spawn, spawnDiesel(n.spawn, n.batch)) },
      { name: EFFECT, run: () => timed(n.spawn, spawnEffect(n.spawn, n.batch)) }
    ])

    await runCase(`deliver ${n.messages.toLocaleString("en-US")} msgs to ${n.mailboxes} mailboxes`, "msgs/s", true, [
      { name: OURS, run: () => timed(n.messages, deliverDiesel(n.messages, n.mailboxes)) },
      { name: EFFECT, run: () => timed(n.messages, deliverEffect(n.messages, n.mailboxes)) }
    ])

    await runCase(
      `heap per idle conversation (${n.idle.toLocaleString("en-US")} alive)`,
      "bytes",
      false,
      [
        { name: OURS, run: () => heapPerFiber(n.idle, idleDiesel) },
        { name: EFFECT, run: () => heapPerFiber(n.idle, idleEffect) }
      ],
      smoke ? n.rounds : 3
    )
    return out
  }
}
