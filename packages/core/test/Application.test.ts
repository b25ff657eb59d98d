import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { Application, Conversation, Loop, TestConnection } from "../src/index.js"

const fixture = fileURLToPath(new URL("./fixtures/signal-app.ts", import.meta.url))
const root = fileURLToPath(new URL("../../../", import.meta.url))

describe("Application", () => {
  it.effect("stop drains: conversations finish, stragglers are interrupted at the deadline, then services close", () =>
    Effect.gen(function* () {
      const events: Array<string> = []
      const registry = new Loop.Registry()
      const service = Layer.effectDiscard(
        Effect.gen(function* () {
          yield* Effect.addFinalizer(() => Effect.sync(() => events.push("service closed")))
          yield* Effect.forkScoped(
            Conversation.run(
              TestConnection.stream().connection,
              Application.whenDraining.pipe(
                Effect.andThen(Effect.sleep("1 second")),
                Effect.andThen(Effect.sync(() => events.push("polite finished")))
              )
            )
          )
          yield* Effect.forkScoped(
            Conversation.run(
              TestConnection.stream().connection,
              Effect.never.pipe(Effect.ensuring(Effect.sync(() => events.push("stubborn interrupted"))))
            )
          )
        })
      )
      const started = yield* Deferred.make<Application.Lifecycle>()
      const app = yield* Effect.forkChild(
        Application.run({
          services: service,
          drainTimeout: "5 seconds",
          setup: Application.CurrentLifecycle.use((lifecycle) => Deferred.succeed(started, lifecycle))
        }).pipe(Effect.provideService(Loop.CurrentRegistry, registry))
      )
      const lifecycle = yield* Deferred.await(started)
      yield* Effect.yieldNow
      expect(registry.conversations).toBe(2)
      yield* lifecycle.stop
      yield* TestClock.adjust("0 millis")
      expect(events).toEqual([])
      yield* TestClock.adjust("1 second")
      expect(events).toEqual(["polite finished"])
      yield* TestClock.adjust("4 seconds")
      yield* Fiber.join(app)
      expect(events).toEqual(["polite finished", "stubborn interrupted", "service closed"])
      expect(registry.conversations).toBe(0)
    })
  )

  it.live(
    "SIGINT shuts a real process down gracefully: drain, deadline, every finalizer, exit 130",
    () =>
      Effect.callback<{ readonly code: number | null; readonly output: string }>((resume) => {
        const child = spawn(process.execPath, ["--conditions=@diesel/source", "--import", "tsx", fixture], {
          cwd: root,
          stdio: ["ignore", "pipe", "pipe"]
        })
        let output = ""
        let signalled = false
        child.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString()
          if (!signalled && output.includes("ready")) {
            signalled = true
            child.kill("SIGINT")
          }
        })
        child.stderr.on("data", (chunk: Buffer) => {
          output += chunk.toString()
        })
        child.on("exit", (code) => resume(Effect.succeed({ code, output })))
        return Effect.sync(() => child.kill("SIGKILL"))
      }).pipe(
        Effect.tap(({ code, output }) => {
          const lines = output.trim().split("\n")
          expect(code).toBe(130)
          expect(lines[0]).toBe("ready")
          expect(lines.slice(1, 3).sort()).toEqual(["polite 1 finished", "polite 2 finished"])
          expect(lines.slice(3)).toEqual(["stubborn finalized", "service closed"])
          return Effect.void
        })
      ),
    30_000
  )
})
