/**
 * Loops forked from a conversation that share its connection. diesel's `fork_child`, `fork` and
 * keep-alive loops, as structured Effect fibers.
 *
 * - `forkChild`: shares the connection and ends when its parent ends, however the parent ends (diesel's
 *   `ParentDiedException` is plain interruption here).
 * - `fork`: shares the connection but outlives its parent; the conversation stays open until its last
 *   owning loop has ended.
 * - `keepAlive`: a child that is restarted after it fails or returns (after 0.5 s by default, or on any
 *   `Schedule`), and never after its parent has ended.
 *
 * Every loop is registered in `Loop.list` with its label.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Conversation from "./Conversation.js"
import * as Loop from "./Loop.js"

/**
 * @since 0.1.0
 */
export interface ForkOptions {
  /** Name in `Loop.list` and in logs. */
  readonly label?: string | undefined
}

/**
 * Fork a child loop that shares the current connection and is interrupted when its parent ends.
 *
 * @example
 * ```ts
 * import { ConnectedLoop, Connection } from "@diesel/core"
 * import { Effect } from "effect"
 *
 * // inside a conversation: ping the peer every second until the conversation ends
 * const pinger = ConnectedLoop.forkChild(
 *   Effect.forever(Effect.andThen(Connection.send("ping\r\n"), Effect.sleep("1 second"))),
 *   { label: "pinger" }
 * )
 * ```
 *
 * @since 0.1.0
 */
export const forkChild = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options?: ForkOptions
): Effect.Effect<Fiber.Fiber<A, E>, never, R> =>
  Effect.forkChild(Loop.track(effect, "child", options?.label ?? "child"), { startImmediately: true })

/**
 * Fork a loop that shares the current connection and keeps the conversation open until it ends, even if
 * the loop that forked it ends first. Outside a conversation it is an independent loop that ends by
 * itself (or with the process).
 *
 * @since 0.1.0
 */
export const fork = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options?: ForkOptions
): Effect.Effect<Fiber.Fiber<A, E>, never, R> =>
  Conversation.Current.use((conversation) => {
    const tracked = Loop.track(effect, "loop", options?.label ?? "loop")
    if (conversation === undefined) return Effect.forkDetach(tracked, { startImmediately: true })
    conversation.retain()
    return Effect.forkIn(
      Effect.ensuring(
        tracked,
        Effect.sync(() => conversation.release())
      ),
      conversation.scope,
      {
        startImmediately: true
      }
    )
  })

/**
 * @since 0.1.0
 */
export interface KeepAliveOptions extends ForkOptions {
  /**
   * When to restart after the body ends (its input is the number of restarts so far). Default: 0.5 s
   * after every end, forever. When the schedule stops, the loop stops.
   */
  readonly schedule?: Schedule.Schedule<unknown> | undefined
}

/**
 * The default keep-alive restart delay, as in diesel.
 *
 * @since 0.1.0
 */
export const DEFAULT_RESTART_DELAY = Duration.millis(500)

/**
 * Fork a keep-alive child: `effect` runs again after it fails or returns, per the schedule, for as long as
 * its parent lives. Failures are logged. The body shares the current connection.
 *
 * @since 0.1.0
 */
export const keepAlive = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options?: KeepAliveOptions
): Effect.Effect<Fiber.Fiber<void>, never, R> => {
  const label = options?.label ?? "keepAlive"
  const schedule = options?.schedule ?? Schedule.spaced(DEFAULT_RESTART_DELAY)
  const once = Effect.withFiber((fiber) => {
    const entry = fiber.getRef(Loop.Current)
    return effect.pipe(
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause) ? Effect.interrupt : Effect.logWarning(`keep-alive loop ${label} failed`, cause)
      ),
      Effect.ensuring(
        Effect.sync(() => {
          if (entry !== undefined) entry.deaths++
        })
      )
    )
  })
  const body = Effect.asVoid(Effect.repeat(once, schedule))
  return Effect.forkChild(Loop.track(body, "keepAlive", label), { startImmediately: true })
}
