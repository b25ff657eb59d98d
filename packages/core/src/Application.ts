/**
 * The application: diesel's `quickstart(services..., loops...)` and `quickstop()`.
 *
 * `Application.run` builds the services (Layers such as `TCPService.layer(...)` or
 * `UDPConnection.layer(...)`), starts the loops (Effects), and runs until `Application.stop` is called or
 * the fiber is interrupted (`Application.main` interrupts it on SIGINT/SIGTERM). Shutdown is graceful:
 *
 * 1. the lifecycle's `draining` latch opens: transports stop accepting connections and new peers, and
 *    conversations that watch it (`Application.whenDraining`) can say goodbye;
 * 2. the application waits until no conversation is left, or until the drain deadline
 *    (`drainTimeout`, default 10 s);
 * 3. everything still running is interrupted and every finalizer runs (conversations, their loops,
 *    services), in that order.
 *
 * @example
 * ```ts
 * import { Application } from "@diesel/core"
 * import { TCPService } from "@diesel/tcp"
 *
 * Application.main({
 *   services: TCPService.layer({ port: 7000, handler: echo }),
 *   drainTimeout: "5 seconds"
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Latch from "effect/Latch"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Loop from "./Loop.js"

/**
 * The shutdown state of the running application.
 *
 * @since 0.1.0
 */
export interface Lifecycle {
  /** Opens when shutdown begins: stop accepting, finish what is in progress. */
  readonly draining: Latch.Latch
  /** Ask the application to shut down (diesel's `quickstop`). */
  readonly stop: Effect.Effect<void>
}

const makeLifecycle = (): Lifecycle & { readonly stopped: Deferred.Deferred<void> } => {
  const stopped = Deferred.makeUnsafe<void>()
  return { draining: Latch.makeUnsafe(false), stopped, stop: Deferred.succeed(stopped, undefined).pipe(Effect.asVoid) }
}

/**
 * The lifecycle of the application the fiber runs in. Outside an application it never drains.
 *
 * @since 0.1.0
 */
export const CurrentLifecycle = Context.Reference<Lifecycle>("@diesel/core/Application/Lifecycle", {
  defaultValue: makeLifecycle
})

/**
 * Shut the current application down gracefully (diesel's `quickstop`).
 *
 * @since 0.1.0
 */
export const stop: Effect.Effect<void> = CurrentLifecycle.use((lifecycle) => lifecycle.stop)

/**
 * Wait until the current application starts shutting down.
 *
 * @since 0.1.0
 */
export const whenDraining: Effect.Effect<void> = CurrentLifecycle.use((lifecycle) => lifecycle.draining.await)

/**
 * @since 0.1.0
 */
export interface Options<E, S = never, ES = never> {
  /**
   * Services to run for the lifetime of the application: one Layer (combine several with
   * `Layer.mergeAll`). What it provides (a `TCPService`'s bound port, a `UDPSocket`) is available to
   * `setup` and the loops.
   */
  readonly services?: Layer.Layer<S, ES> | undefined
  /** Loops to run for the lifetime of the application; they are interrupted at shutdown. */
  readonly loops?: ReadonlyArray<Effect.Effect<unknown, E, S>> | undefined
  /** Runs once every service is up; its failure fails the application. */
  readonly setup?: Effect.Effect<unknown, E, S> | undefined
  /** How long conversations may take to finish once shutdown begins (default 10 s). */
  readonly drainTimeout?: Duration.Input | undefined
}

/**
 * The default drain deadline.
 *
 * @since 0.1.0
 */
export const DEFAULT_DRAIN_TIMEOUT = Duration.seconds(10)

/**
 * Run an application until `stop` is called or the fiber is interrupted, then shut it down gracefully.
 * A loop that fails fails the application (and shuts it down).
 *
 * @since 0.1.0
 */
export const run = <E, S = never, ES = never>(options: Options<E, S, ES>): Effect.Effect<void, E | ES> =>
  Effect.withFiber((fiber) => {
    const registry = fiber.getRef(Loop.CurrentRegistry)
    const lifecycle = makeLifecycle()
    const drainTimeout = options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT
    const drain = Effect.gen(function* () {
      yield* lifecycle.draining.open
      yield* Effect.logDebug(`draining ${registry.conversations} conversation(s)`)
      yield* registry.awaitNoConversations.pipe(Effect.timeoutOption(drainTimeout))
    })
    return Effect.gen(function* () {
      const scope = yield* Effect.scope
      // Without services nothing is provided (S is never then).
      const services: Context.Context<S> =
        options.services === undefined
          ? (Context.empty() as Context.Context<S>)
          : yield* Layer.buildWithScope(options.services, scope)
      const loops = yield* Effect.forEach(options.loops ?? [], (loop, index) =>
        Effect.forkScoped(Loop.track(Effect.provideContext(loop, services), "loop", `application loop ${index + 1}`))
      )
      // Finalizers run in reverse order: the drain runs first, while services and loops are still up.
      yield* Scope.addFinalizer(scope, drain)
      if (options.setup !== undefined) yield* Effect.provideContext(options.setup, services)
      const loopFailed = loops.map(
        (loop): Effect.Effect<void, E | ES> =>
          Effect.flatMap(Fiber.await(loop), (exit) =>
            Exit.isFailure(exit) ? Effect.failCause(exit.cause) : Effect.never
          )
      )
      yield* Effect.raceAll<Effect.Effect<void, E | ES>>([Deferred.await(lifecycle.stopped), ...loopFailed])
    }).pipe(Effect.scoped, Effect.provideService(CurrentLifecycle, lifecycle))
  })

/**
 * Run an application as the process's main program: SIGINT and SIGTERM start a graceful shutdown, and the
 * process exits once it is done (130 after a signal, 1 after a failure, 0 after `stop`).
 *
 * @since 0.1.0
 */
export const main = <E, S = never, ES = never>(options: Options<E, S, ES>): void => NodeRuntime.runMain(run(options))
