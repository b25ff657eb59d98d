/**
 * Events: diesel's `fire`, `wait` and `first`.
 *
 * An event is a name (a string) or a typed `Event<A>` value. `wait` suspends until the event is fired;
 * `fire` wakes every fiber waiting on it at that moment with the value, and never yields. Events are
 * unbuffered: a fire with nobody waiting is lost, and a fiber starts waiting only once it calls `wait`.
 *
 * `first` races a sleep, any number of events and at most one receive operation, and says which won.
 * Waits are registered before `first` suspends, so a fire in between is not missed; a receive that loses
 * consumes nothing.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Connection from "./Connection.js"
import * as Receive from "./Receive.js"

/**
 * A typed event.
 *
 * @since 0.1.0
 */
export interface Event<A> {
  readonly _tag: "Event"
  readonly name: string
  /** Phantom: the type of the fired value. */
  readonly _A?: (_: never) => A
}

/**
 * A typed event, or a plain name (whose value is `unknown`).
 *
 * @since 0.1.0
 */
export type Key<A = unknown> = Event<A> | string

/**
 * The value type of an event key.
 *
 * @since 0.1.0
 */
export type ValueOf<K> = K extends Event<infer A> ? A : unknown

/**
 * Make a typed event. Two calls make two distinct events, even with the same name.
 *
 * @example
 * ```ts
 * import { Event } from "@diesel/core"
 * const said = Event.make<{ readonly from: string; readonly text: string }>("chat/said")
 * ```
 *
 * @since 0.1.0
 */
export const make = <A>(name: string): Event<A> => ({ _tag: "Event", name })

type Listener = (value: unknown) => void

/**
 * The table of current waiters. One per process by default.
 *
 * @since 0.1.0
 */
export class Hub {
  private readonly waiters = new Map<Key, Set<Listener>>()

  /** Register a one-shot listener; returns its removal. */
  listen(key: Key, listener: Listener): () => void {
    let set = this.waiters.get(key)
    if (set === undefined) {
      set = new Set()
      this.waiters.set(key, set)
    }
    set.add(listener)
    return () => {
      const current = this.waiters.get(key)
      if (current === undefined) return
      current.delete(listener)
      if (current.size === 0) this.waiters.delete(key)
    }
  }

  /** Deliver `value` to every current waiter on `key`; returns how many there were. */
  fire(key: Key, value: unknown): number {
    const set = this.waiters.get(key)
    if (set === undefined) return 0
    this.waiters.delete(key)
    for (const listener of set) listener(value)
    return set.size
  }

  /** Number of event keys somebody waits on (unused keys are removed). */
  get size(): number {
    return this.waiters.size
  }
}

const globalHub = new Hub()

/**
 * Resume a woken waiter on a later scheduler tick, so that the firing fiber keeps running until it yields.
 */
const later = <A>(value: A): Effect.Effect<A> => Effect.as(Effect.yieldNow, value)

/**
 * The hub `fire` and `wait` use. Provide another to isolate a group of conversations.
 *
 * @since 0.1.0
 */
export const CurrentHub = Context.Reference<Hub>("@diesel/core/Event/Hub", { defaultValue: () => globalHub })

/**
 * Wake every fiber currently waiting on `event` with `value`. Never yields; returns the number woken.
 *
 * @since 0.1.0
 */
export const fire: {
  <A>(event: Event<A>, value: A): Effect.Effect<number>
  (name: string, value?: unknown): Effect.Effect<number>
} = (key: Key, value?: unknown): Effect.Effect<number> =>
  CurrentHub.use((hub) => Effect.sync(() => hub.fire(key, value)))

/**
 * Wait until `event` is fired, and return its value.
 *
 * @since 0.1.0
 */
export const wait: {
  <A>(event: Event<A>): Effect.Effect<A>
  (name: string): Effect.Effect<unknown>
} = (key: Key): Effect.Effect<never> =>
  CurrentHub.use((hub) =>
    Effect.callback<never>((resume) => {
      const remove = hub.listen(key, (value) => resume(later(value as never)))
      return Effect.sync(remove)
    })
  )

/**
 * The outcome of `first`.
 *
 * @since 0.1.0
 */
export type Outcome<W extends ReadonlyArray<Key<unknown>>, A> =
  | { readonly _tag: "Sleep" }
  | { readonly _tag: "Wait"; readonly event: W[number]; readonly value: ValueOf<W[number]> }
  | { readonly _tag: "Receive"; readonly value: A }

/**
 * Options for `first`: at most one receive operation, any number of events, an optional sleep.
 *
 * @since 0.1.0
 */
export interface FirstOptions<W extends ReadonlyArray<Key<unknown>>, A, E> {
  readonly sleep?: Duration.Input | undefined
  readonly waits?: W | undefined
  readonly receive?: Receive.ReceiveOp<A, E> | undefined
}

const INPUT = Symbol("input")
const SLEPT: { readonly _tag: "Sleep" } = { _tag: "Sleep" }

/**
 * Race a sleep, events and one receive operation on the current connection; the first to complete wins
 * and the rest are cancelled. A receive that loses consumes nothing; when its data is already buffered it
 * wins at once.
 *
 * @example
 * ```ts
 * import { Event, Receive } from "@diesel/core"
 * import { Effect } from "effect"
 *
 * const shutdown = Event.make<string>("shutdown")
 * const step = Effect.gen(function* () {
 *   const outcome = yield* Event.first({ receive: Receive.untilEolOp(), waits: [shutdown], sleep: "30 seconds" })
 *   switch (outcome._tag) {
 *     case "Receive": return Receive.text(outcome.value)
 *     case "Wait": return `shutting down: ${outcome.value}`
 *     case "Sleep": return "idle"
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 */
export const first = <const W extends ReadonlyArray<Key<unknown>> = readonly [], A = never, E = never>(
  options: FirstOptions<W, A, E>
): Effect.Effect<Outcome<W, A>, E | Receive.ReceiveError> =>
  Effect.withFiber((fiber) => {
    const op = options.receive
    const connection = op === undefined ? undefined : fiber.getRef(Connection.Current)
    if (op !== undefined && connection === undefined) {
      return Effect.fail(new Connection.NoConnectionError({ operation: `first(${op.operation})` }))
    }
    if (op !== undefined && connection !== undefined) {
      const ready = op.poll(connection)
      if (ready !== undefined) return Effect.map(ready, (value): Outcome<W, A> => ({ _tag: "Receive", value }))
    }
    const hub = fiber.getRef(CurrentHub)
    const waits = options.waits ?? []
    let fired: Outcome<W, A> | undefined
    let wake: ((outcome: Outcome<W, A>) => void) | undefined
    const removals = waits.map((event) =>
      hub.listen(event, (value) => {
        if (fired !== undefined) return
        fired = { _tag: "Wait", event, value: value as ValueOf<W[number]> }
        wake?.(fired)
      })
    )
    const unlisten = Effect.sync(() => {
      for (const remove of removals) remove()
    })
    const eventArm = Effect.callback<Outcome<W, A>>((resume) => {
      if (fired !== undefined) return resume(Effect.succeed(fired))
      wake = (outcome) => resume(later(outcome))
      return Effect.sync(() => {
        wake = undefined
      })
    })
    const deadline =
      options.sleep === undefined
        ? undefined
        : fiber.getRef(Clock.Clock).currentTimeMillisUnsafe() +
          Duration.toMillis(Duration.fromInputUnsafe(options.sleep))

    const loop: Effect.Effect<Outcome<W, A>, E | Receive.ReceiveError> = Effect.suspend(() => {
      const arms: Array<Effect.Effect<Outcome<W, A> | typeof INPUT, Receive.ConnectionClosedError>> = []
      if (waits.length > 0) arms.push(eventArm)
      if (op !== undefined && connection !== undefined)
        arms.push(Effect.as(Receive.awaitInput(connection, op.operation), INPUT))
      if (deadline !== undefined) {
        arms.push(
          Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.as(Effect.sleep(Math.max(0, deadline - now)), SLEPT))
        )
      }
      if (arms.length === 0) return Effect.never
      return Effect.flatMap(Effect.raceAll(arms), (winner) => {
        if (winner !== INPUT) return Effect.succeed(winner)
        if (fired !== undefined) return Effect.succeed(fired)
        const ready = op !== undefined && connection !== undefined ? op.poll(connection) : undefined
        if (ready !== undefined) return Effect.map(ready, (value): Outcome<W, A> => ({ _tag: "Receive", value }))
        return loop
      })
    })
    return Effect.ensuring(loop, unlisten)
  })
