/**
 * Keyed mutual exclusion: diesel's `synchronized(key)`.
 *
 * `Synchronized.make()` gives a table of locks created on demand per key; `withLock(key)(effect)` runs
 * `effect` while holding the lock for `key`, so effects with the same key run one at a time and effects
 * with different keys run concurrently. A key's lock is removed once nobody holds or waits for it, so
 * the table stays as small as the set of keys in use.
 *
 * For a single lock or a counting semaphore, use Effect's `Semaphore` (diesel's `Lock`).
 *
 * @example
 * ```ts
 * import { Synchronized } from "@diesel/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const perName = yield* Synchronized.make<string>()
 *   // concurrent lookups of the same name run one at a time
 *   yield* perName.withLock("example.test")(Effect.logInfo("resolving"))
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Semaphore from "effect/Semaphore"

/**
 * @since 0.1.0
 */
export interface Synchronized<K> {
  readonly withLock: (key: K) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Number of keys currently held or waited for. */
  readonly size: () => number
}

interface Slot {
  readonly semaphore: Semaphore.Semaphore
  users: number
}

/**
 * Make a table of keyed locks.
 *
 * @since 0.1.0
 */
export const make = <K>(): Effect.Effect<Synchronized<K>> =>
  Effect.sync(() => {
    const slots = new Map<K, Slot>()
    const withLock =
      (key: K) =>
      <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
        Effect.acquireUseRelease(
          Effect.sync(() => {
            let slot = slots.get(key)
            if (slot === undefined) {
              slot = { semaphore: Semaphore.makeUnsafe(1), users: 0 }
              slots.set(key, slot)
            }
            slot.users++
            return slot
          }),
          (slot) => slot.semaphore.withPermit(effect),
          (slot) =>
            Effect.sync(() => {
              if (--slot.users === 0) slots.delete(key)
            })
        )
    return { withLock, size: () => slots.size }
  })
