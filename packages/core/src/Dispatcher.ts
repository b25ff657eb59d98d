/**
 * A work dispatcher: diesel's `util.queue.Dispatcher`.
 *
 * Each dispatched message goes to exactly one subscriber, chosen at random (through Effect's `Random`,
 * so tests can seed it). With no subscriber, messages wait in a bounded backlog that the next subscriber
 * receives. When a subscriber leaves (its scope closes), the messages it had not taken are dispatched
 * again, so nothing is lost.
 *
 * For broadcast to every subscriber use Effect's `PubSub` (diesel's `Fanout`).
 *
 * @example
 * ```ts
 * import { Dispatcher } from "@diesel/core"
 * import { Effect, Queue } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const jobs = yield* Dispatcher.make<string>()
 *   yield* Effect.forkChild(Effect.scoped(Effect.gen(function* () {
 *     const inbox = yield* jobs.accept
 *     while (true) yield* Effect.logInfo(yield* Queue.take(inbox))
 *   })))
 *   yield* jobs.dispatch("job 1")
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"

/**
 * The backlog (messages waiting for a subscriber) is full.
 *
 * @since 0.1.0
 */
export class BacklogFullError extends Schema.TaggedError<BacklogFullError>()("BacklogFullError", {
  capacity: Schema.Int
}) {}

/**
 * @since 0.1.0
 */
export interface Dispatcher<A> {
  /** Hand `message` to one subscriber, or to the backlog when there is none. */
  readonly dispatch: (message: A) => Effect.Effect<void, BacklogFullError>
  /** Subscribe for the lifetime of the scope; the queue receives this subscriber's share. */
  readonly accept: Effect.Effect<Queue.Dequeue<A>, never, Scope.Scope>
  /** Number of current subscribers. */
  readonly subscribers: () => number
  /** Messages waiting for a subscriber. */
  readonly backlog: () => number
}

/**
 * Make a dispatcher. `backlog` bounds the messages kept while nobody subscribes (default 10,000).
 *
 * @since 0.1.0
 */
export const make = <A>(options?: { readonly backlog?: number | undefined }): Effect.Effect<Dispatcher<A>> =>
  Effect.sync(() => {
    const capacity = options?.backlog ?? 10_000
    const subscribers: Array<Queue.Queue<A>> = []
    const backlog: Array<A> = []

    const dispatch = (message: A): Effect.Effect<void, BacklogFullError> =>
      Effect.suspend(() => {
        if (subscribers.length === 0) {
          if (backlog.length >= capacity) return Effect.fail(new BacklogFullError({ capacity }))
          backlog.push(message)
          return Effect.void
        }
        if (subscribers.length === 1) {
          Queue.offerUnsafe(subscribers[0] as Queue.Queue<A>, message)
          return Effect.void
        }
        return Effect.map(Random.nextIntBetween(0, subscribers.length - 1), (index) => {
          Queue.offerUnsafe(subscribers[index] as Queue.Queue<A>, message)
        })
      })

    const accept: Effect.Effect<Queue.Dequeue<A>, never, Scope.Scope> = Effect.acquireRelease(
      Effect.gen(function* () {
        const queue = yield* Queue.unbounded<A>()
        for (const message of backlog.splice(0, backlog.length)) Queue.offerUnsafe(queue, message)
        subscribers.push(queue)
        return queue
      }),
      (queue) =>
        Effect.gen(function* () {
          subscribers.splice(subscribers.indexOf(queue), 1)
          const left = yield* Queue.clear(queue)
          yield* Queue.shutdown(queue)
          for (const message of left) yield* Effect.ignore(dispatch(message))
        })
    )

    return {
      dispatch,
      accept,
      subscribers: () => subscribers.length,
      backlog: () => backlog.length
    }
  })
