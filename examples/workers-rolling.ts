/**
 * The rolling-restart scenario of the Workers test, as a program of its own so the test can run it in a
 * network namespace of its own (`unshare -rn`, with `net.ipv4.tcp_migrate_req=1` there): a supervisor with
 * two workers of `examples/workers.ts`, eight clients making one request per connection without pause, a
 * rolling restart in the middle. Prints `{ served, failures, generations }` as JSON.
 */
import { fileURLToPath } from "node:url"
import { Workers } from "@diesel/core/node"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import { freePort, request } from "./workers-peers.js"

const entry = fileURLToPath(new URL("./workers.ts", import.meta.url))

const scenario = Effect.gen(function* () {
  const port = yield* freePort
  const supervisor = yield* Workers.make({ entry, count: 2, env: { PORT: String(port) } })
  const served = yield* Ref.make(0)
  const failures = yield* Ref.make<Array<string>>([])
  const client = Effect.forever(
    request(port).pipe(
      Effect.andThen(Ref.update(served, (n) => n + 1)),
      Effect.catch((error) => Ref.update(failures, (all) => [...all, error.message]))
    )
  )
  const load = yield* Effect.forkChild(
    Effect.all(
      Array.from({ length: 8 }, () => client),
      { concurrency: "unbounded" }
    )
  )
  yield* Ref.get(served).pipe(Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (n) => n > 200 }))
  yield* supervisor.restart
  const mid = yield* Ref.get(served)
  yield* Ref.get(served).pipe(Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (n) => n > mid + 200 }))
  yield* Fiber.interrupt(load)
  const generations = (yield* supervisor.workers).map((w) => w.generation)
  return { served: yield* Ref.get(served), failures: yield* Ref.get(failures), generations }
}).pipe(Effect.scoped)

Effect.runPromise(scenario).then(
  (result) => console.log(JSON.stringify(result)),
  (error) => {
    console.error(error)
    process.exitCode = 1
  }
)
