/**
 * Workers: one diesel application in N processes that bind the same TCP and UDP ports with
 * `reusePort`, under a supervisor that restarts a worker that dies (with backoff, and a limit), forwards
 * shutdown, drains every worker within the deadline, and restarts them one by one without downtime.
 *
 * The same script is the supervisor and the workers: `Workers.main(app)` runs the supervisor when the
 * process was started by hand, and `app` (an `Application` definition) when the supervisor forked it.
 * Give every service `reusePort: true`: the kernel then spreads new TCP connections over the workers, and
 * hashes each UDP peer's 4-tuple to one worker, so a peer keeps its conversation while the group of
 * workers is stable.
 *
 * The supervisor does nothing per message or per connection: it holds an IPC channel to each worker,
 * and wakes when a worker starts, dies, or is asked for its loops and metrics.
 *
 * @example
 * ```ts
 * import { Connection, Receive } from "@diesel/core"
 * import { Workers } from "@diesel/core/node"
 * import { TCPService } from "@diesel/tcp"
 * import { Effect } from "effect"
 *
 * const echo = Effect.forever(Effect.flatMap(Receive.untilEol(), Connection.send))
 *
 * Workers.main(
 *   { services: TCPService.layer({ port: 7000, reusePort: true, handler: echo }) },
 *   { count: 2 }
 * )
 * ```
 *
 * @since 0.1.0
 */
import { type ChildProcess, fork } from "node:child_process"
import { availableParallelism } from "node:os"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Application from "../Application.js"
import * as Loop from "../Loop.js"

const ENV_INDEX = "DIESEL_WORKER_INDEX"
const ENV_GENERATION = "DIESEL_WORKER_GENERATION"

/**
 * A worker could not be started or answered, or the supervisor gave up restarting (`reason`).
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkerError extends Schema.TaggedError<WorkerError>()("WorkerError", {
  reason: Schema.Literals(["spawn", "notReady", "restartLimit", "unanswered"]),
  worker: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    return `worker ${this.worker}: ${this.reason}: ${this.detail}`
  }
}

/**
 * Options of the supervisor.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Worker processes. Default: the number of CPUs (`os.availableParallelism()`). */
  readonly count?: number | undefined
  /** The script each worker runs. Default: this process's own (`process.argv[1]`). */
  readonly entry?: string | undefined
  /** Arguments after the script. Default: this process's own. */
  readonly args?: ReadonlyArray<string> | undefined
  /** Node options of the workers (`--import tsx`, ...). Default: this process's own `execArgv`. */
  readonly execArgv?: ReadonlyArray<string> | undefined
  /** Extra environment of the workers. */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** How long a new worker may take to bring its services up. Default 30 s. */
  readonly readyTimeout?: Duration.Input | undefined
  /**
   * How long a worker may take to drain on shutdown or restart before it is killed. Default 15 s (a little
   * more than `Application`'s default drain of 10 s, so the worker's own deadline acts first).
   */
  readonly drainTimeout?: Duration.Input | undefined
  /** Restart a dead worker after `backoff * 2^(deaths - 1)`, at most `maxBackoff`. Default 100 ms, 5 s. */
  readonly backoff?: Duration.Input | undefined
  readonly maxBackoff?: Duration.Input | undefined
  /** Give up (the supervisor fails) after this many deaths within `restartWindow`. Default 10 in 60 s. */
  readonly maxRestarts?: number | undefined
  readonly restartWindow?: Duration.Input | undefined
}

/**
 * A worker as the supervisor sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerInfo {
  /** The slot, 0 to count - 1; a restarted worker keeps its slot. */
  readonly index: number
  /** How many processes this slot has had before this one. */
  readonly generation: number
  readonly pid: number
  readonly state: "starting" | "ready" | "draining"
}

/**
 * A live loop of a worker (`Loop.list` in that worker), with the worker it runs in.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerLoop extends Loop.Info {
  readonly worker: number
  readonly pid: number
}

/**
 * The running supervisor.
 *
 * @since 0.1.0
 * @category models
 */
export interface Supervisor {
  /** The workers now. */
  readonly workers: Effect.Effect<ReadonlyArray<WorkerInfo>>
  /**
   * Rolling restart: for each slot in turn, start a new worker, wait until its services are up, then
   * drain the old one. The ports stay served throughout.
   */
  readonly restart: Effect.Effect<void, WorkerError>
  /** Every worker's live conversations and loops, each with its worker. */
  readonly loops: Effect.Effect<ReadonlyArray<WorkerLoop>, WorkerError>
  /** Every worker's metrics, each series with a `worker` attribute. */
  readonly metrics: Effect.Effect<ReadonlyArray<Metric.Metric.Snapshot>, WorkerError>
  /** Completes when the supervisor gives up (a slot died more than `maxRestarts` times in the window). */
  readonly failed: Effect.Effect<never, WorkerError>
}

/**
 * The supervisor service provided by `layer`.
 *
 * @since 0.1.0
 * @category services
 */
export class WorkerSupervisor extends Context.Service<WorkerSupervisor, Supervisor>()(
  "@diesel/core/node/Workers/Supervisor"
) {}

/**
 * In a worker: its slot and generation. `undefined` in the supervisor and in a process that runs alone.
 *
 * @since 0.1.0
 * @category accessors
 */
export const current: { readonly index: number; readonly generation: number } | undefined = (() => {
  const index = process.env[ENV_INDEX]
  if (index === undefined || process.send === undefined) return undefined
  return { index: Number(index), generation: Number(process.env[ENV_GENERATION] ?? 0) }
})()

// IPC between the supervisor and its workers
type ToWorker =
  | { readonly _diesel: "drain" }
  | { readonly _diesel: "ask"; readonly id: number; readonly what: "loops" | "metrics" }
type FromWorker =
  | { readonly _diesel: "ready" }
  | { readonly _diesel: "answer"; readonly id: number; readonly value: unknown }

const isFromWorker = (message: unknown): message is FromWorker =>
  typeof message === "object" && message !== null && "_diesel" in message

/** A worker process and what the supervisor is waiting for from it. */
interface Handle {
  readonly index: number
  readonly generation: number
  readonly child: ChildProcess
  state: WorkerInfo["state"]
  /** Set when the supervisor itself asked it to go (restart, shutdown): its exit is not a death. */
  retiring: boolean
  readonly ready: Deferred.Deferred<void, WorkerError>
  readonly exited: Deferred.Deferred<number | null>
  readonly answers: Map<number, (value: unknown) => void>
}

/**
 * Starts the workers and supervises them for the lifetime of the scope; closing the scope drains them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("Workers.make")(function* (options: Options = {}) {
  const count = options.count ?? availableParallelism()
  const entry = options.entry ?? process.argv[1] ?? ""
  const args = options.args ?? process.argv.slice(2)
  const execArgv = options.execArgv ?? process.execArgv
  const readyTimeout = Duration.fromInputUnsafe(options.readyTimeout ?? "30 seconds")
  const drainTimeout = Duration.fromInputUnsafe(options.drainTimeout ?? "15 seconds")
  const backoff = Duration.toMillis(Duration.fromInputUnsafe(options.backoff ?? "100 millis"))
  const maxBackoff = Duration.toMillis(Duration.fromInputUnsafe(options.maxBackoff ?? "5 seconds"))
  const maxRestarts = options.maxRestarts ?? 10
  const restartWindow = Duration.toMillis(Duration.fromInputUnsafe(options.restartWindow ?? "60 seconds"))

  const slots: Array<Handle | undefined> = Array.from({ length: count }, () => undefined)
  const generations: Array<number> = Array.from({ length: count }, () => 0)
  const deaths: Array<Array<number>> = Array.from({ length: count }, () => [])
  const gaveUp = yield* Deferred.make<never, WorkerError>()
  let nextAsk = 0

  const spawn = (index: number): Effect.Effect<Handle, WorkerError> =>
    Effect.suspend(() => {
      const generation = generations[index] ?? 0
      generations[index] = generation + 1
      let child: ChildProcess
      try {
        child = fork(entry, [...args], {
          execArgv: [...execArgv],
          env: { ...process.env, ...options.env, [ENV_INDEX]: String(index), [ENV_GENERATION]: String(generation) },
          serialization: "advanced",
          stdio: "inherit"
        })
      } catch (cause) {
        return Effect.fail(new WorkerError({ reason: "spawn", worker: index, detail: String(cause) }))
      }
      const handle: Handle = {
        index,
        generation,
        child,
        state: "starting",
        retiring: false,
        ready: Deferred.makeUnsafe<void, WorkerError>(),
        exited: Deferred.makeUnsafe<number | null>(),
        answers: new Map()
      }
      child.on("message", (message: unknown) => {
        if (!isFromWorker(message)) return
        if (message._diesel === "ready") {
          handle.state = "ready"
          Deferred.doneUnsafe(handle.ready, Effect.void)
        } else {
          const answer = handle.answers.get(message.id)
          handle.answers.delete(message.id)
          answer?.(message.value)
        }
      })
      child.on("error", (error) => {
        Deferred.doneUnsafe(
          handle.ready,
          Effect.fail(new WorkerError({ reason: "spawn", worker: index, detail: String(error) }))
        )
      })
      child.on("exit", (code, signal) => {
        Deferred.doneUnsafe(
          handle.ready,
          Effect.fail(
            new WorkerError({
              reason: "notReady",
              worker: index,
              detail: `exited (${signal ?? code}) before it was ready`
            })
          )
        )
        Deferred.doneUnsafe(handle.exited, Effect.succeed(code))
        for (const answer of handle.answers.values()) answer(undefined)
        handle.answers.clear()
      })
      return Deferred.await(handle.ready).pipe(
        Effect.timeoutOrElse({
          duration: readyTimeout,
          orElse: () =>
            Effect.fail(
              new WorkerError({
                reason: "notReady",
                worker: index,
                detail: `not ready after ${Duration.format(readyTimeout)}`
              })
            )
        }),
        Effect.tapError(() => retire(handle)),
        Effect.as(handle)
      )
    })

  const send = (handle: Handle, message: ToWorker) => {
    if (handle.child.connected) handle.child.send(message, () => {})
  }

  /** Ask a worker to drain; kill it if it has not exited by the deadline. */
  const retire = (handle: Handle): Effect.Effect<void> =>
    Effect.suspend(() => {
      handle.retiring = true
      handle.state = "draining"
      if (Deferred.isDoneUnsafe(handle.exited)) return Effect.void
      send(handle, { _diesel: "drain" })
      return Deferred.await(handle.exited).pipe(
        Effect.timeoutOrElse({
          duration: drainTimeout,
          orElse: () =>
            Effect.sync(() => handle.child.kill("SIGKILL")).pipe(Effect.andThen(Deferred.await(handle.exited)))
        }),
        Effect.asVoid
      )
    })

  /** One slot: keep a worker alive in it, restarting it with backoff when it dies. */
  const supervise = (index: number): Effect.Effect<void, WorkerError> =>
    Effect.gen(function* () {
      while (true) {
        const handle = slots[index]
        if (handle === undefined) {
          const spawned = yield* spawn(index)
          slots[index] = spawned
          continue
        }
        yield* Deferred.await(handle.exited)
        if (slots[index] !== handle) continue // replaced by a rolling restart
        slots[index] = undefined
        if (handle.retiring) return
        const now = yield* Clock.currentTimeMillis
        const recent = (deaths[index] ?? []).filter((at) => now - at < restartWindow)
        recent.push(now)
        deaths[index] = recent
        if (recent.length > maxRestarts) {
          return yield* new WorkerError({
            reason: "restartLimit",
            worker: index,
            detail: `died ${recent.length} times within ${Duration.format(Duration.millis(restartWindow))}`
          })
        }
        const delay = Math.min(maxBackoff, backoff * 2 ** (recent.length - 1))
        yield* Effect.logWarning(
          `worker ${index} died (exit ${handle.child.exitCode ?? handle.child.signalCode}); restarting in ${delay} ms`
        )
        yield* Effect.sleep(Duration.millis(delay))
        // a failed start counts as a death too
        const restarted = yield* Effect.result(spawn(index))
        if (restarted._tag === "Success") slots[index] = restarted.success
        else {
          yield* Effect.logWarning(restarted.failure.message)
          deaths[index]?.push(yield* Clock.currentTimeMillis)
          if ((deaths[index]?.length ?? 0) > maxRestarts) return yield* restarted.failure
        }
      }
    })

  // The first start: every worker up, or the supervisor does not start.
  yield* Effect.forEach(
    slots,
    (_, index) =>
      Effect.map(spawn(index), (handle) => {
        slots[index] = handle
      }),
    { concurrency: "unbounded", discard: true }
  ).pipe(
    Effect.tapError(() =>
      Effect.forEach(slots, (h) => (h === undefined ? Effect.void : retire(h)), {
        concurrency: "unbounded",
        discard: true
      })
    )
  )

  const fibers = yield* Effect.forEach(slots, (_, index) =>
    Effect.forkScoped(supervise(index).pipe(Effect.catch((error) => Deferred.fail(gaveUp, error))))
  )
  // Shutdown: drain every worker at once, then stop supervising.
  yield* Effect.addFinalizer(() =>
    Effect.forEach(slots, (handle) => (handle === undefined ? Effect.void : retire(handle)), {
      concurrency: "unbounded",
      discard: true
    }).pipe(Effect.andThen(Fiber.interruptAll(fibers)))
  )

  const ask = (handle: Handle, what: "loops" | "metrics"): Effect.Effect<unknown, WorkerError> =>
    Effect.callback<unknown, WorkerError>((resume) => {
      const id = ++nextAsk
      handle.answers.set(id, (value) =>
        resume(
          value === undefined
            ? Effect.fail(
                new WorkerError({
                  reason: "unanswered",
                  worker: handle.index,
                  detail: `exited before answering ${what}`
                })
              )
            : Effect.succeed(value)
        )
      )
      send(handle, { _diesel: "ask", id, what })
      return Effect.sync(() => handle.answers.delete(id))
    }).pipe(
      Effect.timeoutOrElse({
        duration: "5 seconds",
        orElse: () =>
          Effect.fail(new WorkerError({ reason: "unanswered", worker: handle.index, detail: `no answer to ${what}` }))
      })
    )

  const live = () => slots.filter((h): h is Handle => h !== undefined && h.state === "ready")

  const supervisor: Supervisor = {
    workers: Effect.sync(() =>
      slots.flatMap((h) =>
        h === undefined ? [] : [{ index: h.index, generation: h.generation, pid: h.child.pid ?? 0, state: h.state }]
      )
    ),
    restart: Effect.forEach(
      slots,
      (_, index) =>
        Effect.gen(function* () {
          const old = slots[index]
          const fresh = yield* spawn(index)
          slots[index] = fresh
          if (old !== undefined) yield* retire(old)
        }),
      { discard: true }
    ),
    // the answers are what `Loop.list` and `Metric.snapshot` return in the worker (same code, same version)
    loops: Effect.suspend(() =>
      Effect.forEach(live(), (h) =>
        Effect.map(ask(h, "loops"), (value) =>
          (value as ReadonlyArray<Loop.Info>).map(
            (info): WorkerLoop => ({ ...info, worker: h.index, pid: h.child.pid ?? 0 })
          )
        )
      )
    ).pipe(Effect.map((all) => all.flat())),
    metrics: Effect.suspend(() =>
      Effect.forEach(live(), (h) =>
        Effect.map(ask(h, "metrics"), (value) =>
          (value as ReadonlyArray<Metric.Metric.Snapshot>).map(
            (snapshot): Metric.Metric.Snapshot => ({
              ...snapshot,
              attributes: { ...snapshot.attributes, worker: String(h.index) }
            })
          )
        )
      )
    ).pipe(Effect.map((all) => all.flat())),
    failed: Deferred.await(gaveUp)
  }
  return supervisor
})

/**
 * The supervisor as a Layer (`WorkerSupervisor`): workers start when the layer is built and drain when it
 * is released.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<WorkerSupervisor, WorkerError> =>
  Layer.effect(WorkerSupervisor, make(options))

/**
 * Run `app` in a worker: `Application.run` plus the worker's side of the IPC channel (ready once the
 * services are up and `setup` ran; drain on the supervisor's word or when the supervisor is gone; loops and
 * metrics on request).
 *
 * @since 0.1.0
 * @category running
 */
export const runWorker = <E, S = never, ES = never>(
  app: Application.Options<E, S, ES>
): Effect.Effect<void, E | ES> => {
  const channel = Effect.gen(function* () {
    const inbox = yield* Queue.unbounded<ToWorker | "disconnected">()
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const onMessage = (message: unknown) => {
          if (typeof message === "object" && message !== null && "_diesel" in message)
            Queue.offerUnsafe(inbox, message as ToWorker)
        }
        const onDisconnect = () => Queue.offerUnsafe(inbox, "disconnected")
        process.on("message", onMessage)
        process.on("disconnect", onDisconnect)
        return { onMessage, onDisconnect }
      }),
      ({ onMessage, onDisconnect }) =>
        Effect.sync(() => {
          process.off("message", onMessage)
          process.off("disconnect", onDisconnect)
        })
    )
    while (true) {
      const message = yield* Queue.take(inbox)
      // an orphaned worker (supervisor gone) drains as on the supervisor's word
      if (message === "disconnected" || message._diesel === "drain") yield* Application.stop
      else {
        const value = message.what === "loops" ? yield* Loop.list : yield* Metric.snapshot
        process.send?.({ _diesel: "answer", id: message.id, value } satisfies FromWorker)
      }
    }
  }).pipe(Effect.scoped)
  return Application.run({
    ...app,
    setup: Effect.gen(function* () {
      if (app.setup !== undefined) yield* app.setup
      process.send?.({ _diesel: "ready" } satisfies FromWorker)
    }),
    loops: [...(app.loops ?? []), channel]
  })
}

/**
 * The process's main program: the supervisor when run by hand (SIGINT/SIGTERM drain every worker, SIGHUP
 * restarts them one by one), `app` in a worker the supervisor forked.
 *
 * @since 0.1.0
 * @category running
 */
export const main = <E, S = never, ES = never>(app: Application.Options<E, S, ES>, options?: Options): void => {
  if (current !== undefined) {
    NodeRuntime.runMain(runWorker(app))
    return
  }
  NodeRuntime.runMain(
    Effect.gen(function* () {
      const supervisor = yield* make(options)
      const hangups = Effect.callback<void>((resume) => {
        const onHup = () => resume(Effect.void)
        process.once("SIGHUP", onHup)
        return Effect.sync(() => process.off("SIGHUP", onHup))
      })
      yield* Effect.forkScoped(
        Effect.forever(
          hangups.pipe(
            Effect.andThen(supervisor.restart),
            Effect.catch((error) => Effect.logError(`rolling restart failed: ${error.message}`))
          )
        )
      )
      return yield* supervisor.failed
    }).pipe(Effect.scoped)
  )
}
