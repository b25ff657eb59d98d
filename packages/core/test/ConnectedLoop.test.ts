import { assert, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Latch, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { ConnectedLoop, Connection, Conversation, Loop, TestConnection } from "../src/index.js"

const text = (bytes: ReadonlyArray<Uint8Array>) => bytes.map((b) => new TextDecoder().decode(b))

describe("ConnectedLoop.forkChild", () => {
  it.effect("a child shares its parent's connection", () =>
    Effect.gen(function* () {
      const peer = TestConnection.stream()
      yield* Effect.gen(function* () {
        const child = yield* ConnectedLoop.forkChild(Connection.send("from child"))
        yield* Fiber.join(child)
        yield* Connection.send("from parent")
      }).pipe(Connection.withConnection(peer.connection))
      expect(text(peer.sent)).toEqual(["from child", "from parent"])
    })
  )

  for (const [how, end] of [
    ["returns", Effect.void],
    ["fails", Effect.fail("boom")],
    ["dies", Effect.die("defect")]
  ] as const) {
    it.effect(`a child is interrupted when its parent ${how}`, () =>
      Effect.gen(function* () {
        const interrupted = yield* Deferred.make<void>()
        const started = yield* Latch.make()
        const parent = yield* Effect.forkChild(
          Effect.gen(function* () {
            yield* ConnectedLoop.forkChild(
              started.open.pipe(
                Effect.andThen(Effect.never),
                Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
              )
            )
            yield* started.await
            return yield* end
          })
        )
        yield* Fiber.await(parent)
        yield* Deferred.await(interrupted)
      })
    )
  }

  it.effect("a child is interrupted when its parent is interrupted", () =>
    Effect.gen(function* () {
      const interrupted = yield* Deferred.make<void>()
      const started = yield* Latch.make()
      const parent = yield* Effect.forkChild(
        Effect.gen(function* () {
          yield* ConnectedLoop.forkChild(
            started.open.pipe(
              Effect.andThen(Effect.never),
              Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
            )
          )
          return yield* Effect.never
        })
      )
      yield* started.await
      yield* Fiber.interrupt(parent)
      yield* Deferred.await(interrupted)
    })
  )

  it.effect("10,000 forked children share the connection and all finish", () =>
    Effect.gen(function* () {
      const peer = TestConnection.datagrams()
      const fibers = yield* Effect.gen(function* () {
        const out: Array<Fiber.Fiber<void, unknown>> = []
        for (let i = 0; i < 10_000; i++) out.push(yield* ConnectedLoop.forkChild(Connection.send("x")))
        return out
      }).pipe(Connection.withConnection(peer.connection))
      yield* Fiber.joinAll(fibers)
      expect(peer.sent.length).toBe(10_000)
    })
  )
})

describe("ConnectedLoop.fork", () => {
  it.effect("a forked loop outlives its parent and keeps the conversation open until it ends", () =>
    Effect.gen(function* () {
      const peer = TestConnection.stream()
      const release = yield* Latch.make()
      const parentDone = yield* Latch.make()
      const conversation = yield* Effect.forkChild(
        Conversation.run(
          peer.connection,
          Effect.gen(function* () {
            yield* ConnectedLoop.fork(release.await.pipe(Effect.andThen(Connection.send("late"))), { label: "owner" })
            yield* parentDone.open
          })
        )
      )
      yield* parentDone.await
      yield* Effect.yieldNow
      expect(peer.isClosed()).toBe(false)
      expect(conversation.pollUnsafe()).toBeUndefined()
      yield* release.open
      const end = yield* Fiber.join(conversation)
      expect(end._tag).toBe("Completed")
      expect(text(peer.sent)).toEqual(["late"])
      expect(peer.isClosed()).toBe(true)
    })
  )

  it.effect("10,000 forked loops all own the conversation; it closes after the last", () =>
    Effect.gen(function* () {
      const peer = TestConnection.datagrams()
      const go = yield* Latch.make()
      const end = yield* Effect.forkChild(
        Conversation.run(
          peer.connection,
          Effect.gen(function* () {
            for (let i = 0; i < 10_000; i++)
              yield* ConnectedLoop.fork(go.await.pipe(Effect.andThen(Connection.send("x"))))
          })
        )
      )
      yield* Effect.yieldNow
      expect(peer.isClosed()).toBe(false)
      yield* go.open
      expect((yield* Fiber.join(end))._tag).toBe("Completed")
      expect(peer.sent.length).toBe(10_000)
      expect(peer.isClosed()).toBe(true)
    })
  )
})

describe("ConnectedLoop.keepAlive (diesel's keep-alive laws)", () => {
  it.effect("law 2: a keep-alive child that fails is restarted after 0.5 s while its parent lives", () =>
    Effect.gen(function* () {
      let runs = 0
      const child = yield* ConnectedLoop.keepAlive(
        Effect.suspend(() => {
          runs++
          return Effect.fail("crash")
        }),
        { label: "flaky" }
      )
      yield* Effect.yieldNow
      expect(runs).toBe(1)
      yield* TestClock.adjust("499 millis")
      expect(runs).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect(runs).toBe(2)
      yield* TestClock.adjust("1 second")
      expect(runs).toBe(4)
      const [info] = (yield* Loop.list).filter((l) => l.label === "flaky")
      expect(info?.deaths).toBe(4)
      yield* Fiber.interrupt(child)
    })
  )

  it.effect("law 2: a keep-alive child that returns is restarted too, on any Schedule", () =>
    Effect.gen(function* () {
      let runs = 0
      const child = yield* ConnectedLoop.keepAlive(
        Effect.sync(() => {
          runs++
        }),
        { schedule: Schedule.spaced("10 seconds").pipe(Schedule.upTo({ times: 2 })) }
      )
      yield* TestClock.adjust("1 minute")
      expect(runs).toBe(3)
      expect(Exit.isSuccess(yield* Fiber.await(child))).toBe(true)
    })
  )

  it.effect("laws 1 and 3: when the parent dies, a keep-alive child dies and is never restarted", () =>
    Effect.gen(function* () {
      let runs = 0
      const parent = yield* Effect.forkChild(
        Effect.gen(function* () {
          yield* ConnectedLoop.keepAlive(
            Effect.suspend(() => {
              runs++
              return Effect.fail("crash")
            })
          )
          yield* Effect.sleep("2250 millis")
          return yield* Effect.fail("parent crashed")
        })
      )
      yield* TestClock.adjust("2250 millis")
      const exit = yield* Fiber.await(parent)
      assert(Exit.isFailure(exit))
      const runsAtDeath = runs
      expect(runsAtDeath).toBe(5)
      yield* TestClock.adjust("10 seconds")
      expect(runs).toBe(runsAtDeath)
      expect((yield* Loop.list).filter((l) => l.kind === "keepAlive")).toEqual([])
    })
  )

  it.effect("a keep-alive child keeps the connection across restarts (diesel lost it)", () =>
    Effect.gen(function* () {
      const peer = TestConnection.stream()
      const child = yield* ConnectedLoop.keepAlive(Connection.send("tick"), {
        schedule: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 2 }))
      }).pipe(Connection.withConnection(peer.connection))
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(child)
      expect(text(peer.sent)).toEqual(["tick", "tick", "tick"])
    })
  )
})

describe("Conversation.run", () => {
  it.effect("a failing handler ends only its own conversation, is reported, and the connection is closed", () =>
    Effect.gen(function* () {
      const a = TestConnection.stream()
      const b = TestConnection.stream()
      const [endA, endB] = yield* Effect.all(
        [
          Conversation.run(a.connection, Effect.fail("bad input")),
          Conversation.run(b.connection, Connection.send("fine"))
        ],
        { concurrency: 2 }
      )
      assert(endA._tag === "Failed")
      expect(endB._tag).toBe("Completed")
      expect(a.isClosed() && b.isClosed()).toBe(true)
      expect(text(b.sent)).toEqual(["fine"])
    })
  )

  it.effect("interrupting a conversation runs its finalizers and its children's", () =>
    Effect.gen(function* () {
      const peer = TestConnection.stream()
      const finalized: Array<string> = []
      const started = yield* Latch.make()
      const fiber = yield* Effect.forkChild(
        Conversation.run(
          peer.connection,
          Effect.gen(function* () {
            yield* ConnectedLoop.forkChild(
              Effect.never.pipe(Effect.ensuring(Effect.sync(() => finalized.push("child"))))
            )
            yield* ConnectedLoop.fork(Effect.never.pipe(Effect.ensuring(Effect.sync(() => finalized.push("owner")))))
            yield* started.open
            return yield* Effect.never.pipe(Effect.ensuring(Effect.sync(() => finalized.push("handler"))))
          })
        )
      )
      yield* started.await
      yield* Fiber.interrupt(fiber)
      expect(finalized.sort()).toEqual(["child", "handler", "owner"])
      expect(peer.isClosed()).toBe(true)
    })
  )
})

describe("Loop", () => {
  it.effect("lists live conversations and loops with labels, parents and ages", () =>
    Effect.gen(function* () {
      const registry = new Loop.Registry()
      const peer = TestConnection.stream()
      const ready = yield* Latch.make()
      const fiber = yield* Effect.forkChild(
        Conversation.run(
          peer.connection,
          Effect.gen(function* () {
            yield* Loop.label("session")
            yield* ConnectedLoop.forkChild(Effect.never, { label: "pinger" })
            yield* ready.open
            return yield* Effect.never
          })
        ).pipe(Effect.provideService(Loop.CurrentRegistry, registry))
      )
      yield* ready.await
      yield* TestClock.adjust("3 seconds")
      const infos = yield* Loop.list.pipe(Effect.provideService(Loop.CurrentRegistry, registry))
      const session = infos.find((i) => i.label === "session")
      const pinger = infos.find((i) => i.label === "pinger")
      assert(session !== undefined && pinger !== undefined)
      expect(session.kind).toBe("conversation")
      expect(session.connectionId).toBe(peer.connection.id)
      expect(pinger.parentId).toBe(session.id)
      expect(session.ageMillis).toBe(3000)
      const table = yield* Loop.render.pipe(Effect.provideService(Loop.CurrentRegistry, registry))
      expect(table).toContain('conversation "session"')
      expect(table).toContain("  #")
      yield* Fiber.interrupt(fiber)
      expect(registry.entries.size).toBe(0)
    })
  )
})
