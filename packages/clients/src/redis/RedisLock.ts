/**
 * A distributed lock on one Redis server (diesel's RedisLock, made safe): `SET key token NX PX ttl`
 * with a random token, renewed every third of its time to live while held, released only if it still
 * holds our token (compare-and-delete in Lua), so a lock that expired and was taken by someone else is
 * never deleted by its former owner.
 *
 * @example
 * ```ts
 * yield* RedisLock.withLock("jobs:nightly", runNightlyJob, { ttl: "30 seconds" })
 * ```
 *
 * @since 0.1.0
 */
import { randomUUID } from "node:crypto"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Commands from "./Commands.js"
import { RedisClient } from "./RedisClient.js"
import type { RedisError } from "./RedisError.js"
import * as RedisScript from "./RedisScript.js"

/**
 * The lock is held by someone else (after waiting, if `wait` was given).
 *
 * @since 0.1.0
 */
export class RedisLockNotAcquired extends Data.TaggedError("RedisLockNotAcquired")<{ readonly key: string }> {
  override get message(): string {
    return `lock ${this.key} is held by another owner`
  }
}

/**
 * The lock expired or was taken over while held (a renewal found another token).
 *
 * @since 0.1.0
 */
export class RedisLockLost extends Data.TaggedError("RedisLockLost")<{ readonly key: string }> {
  override get message(): string {
    return `lock ${this.key} was lost`
  }
}

/**
 * Options of a lock.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Time to live of the key (default 30 seconds); renewed every third of it while held. */
  readonly ttl?: Duration.Input | undefined
  /** Keep retrying for this long when the lock is taken (default: fail at once). */
  readonly wait?: Duration.Input | undefined
  /** Delay between attempts while waiting (default 50 ms). */
  readonly retryDelay?: Duration.Input | undefined
}

/**
 * A held lock.
 *
 * @since 0.1.0
 */
export interface Lock {
  readonly key: string
  readonly token: string
  /** Completes (with `RedisLockLost`) if a renewal finds the lock gone. */
  readonly lost: Effect.Effect<never, RedisLockLost>
}

const RELEASE = RedisScript.make(
  `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`
)
const RENEW = RedisScript.make(
  `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`
)

/**
 * Take the lock for the current scope: renewed while the scope is open, released when it closes.
 *
 * @since 0.1.0
 */
export const acquire = Effect.fn("RedisLock.acquire")(function* (key: string, options: Options = {}) {
  const redis = yield* RedisClient
  const ttl = Duration.fromInputUnsafe(options.ttl ?? "30 seconds")
  const ttlMillis = Math.max(3, Math.round(Duration.toMillis(ttl)))
  const token = randomUUID()
  const attempt = Effect.flatMap(redis.set(key, token, { condition: "NX", expire: ttl }), (ok) =>
    ok ? Effect.void : Effect.fail(new RedisLockNotAcquired({ key }))
  )
  const acquireOnce =
    options.wait === undefined
      ? attempt
      : attempt.pipe(
          Effect.retry({
            while: (e: RedisLockNotAcquired | RedisError) => e._tag === "RedisLockNotAcquired",
            schedule: Schedule.spaced(options.retryDelay ?? "50 millis").pipe(
              Schedule.upTo({ duration: Duration.fromInputUnsafe(options.wait) })
            )
          })
        )
  yield* Effect.acquireRelease(acquireOnce, () =>
    Effect.ignore(redis.runScript(RELEASE, [key], [token]), { log: false })
  )
  const lost = yield* Deferred.make<never, RedisLockLost>()
  const renew = redis.runScript(RENEW, [key], [token, ttlMillis]).pipe(
    Effect.flatMap((renewed) => (renewed === 1 ? Effect.void : Deferred.fail(lost, new RedisLockLost({ key })))),
    // A connection hiccup: try again at the next tick; expiry will tell if it lasted too long.
    Effect.catch(() => Effect.void)
  )
  yield* Effect.forkScoped(
    Effect.sleep(Duration.millis(ttlMillis / 3)).pipe(
      Effect.andThen(renew),
      Effect.repeat({ until: () => Deferred.isDoneUnsafe(lost) })
    )
  )
  const lock: Lock = { key, token, lost: Deferred.await(lost) }
  return lock
})

/**
 * Run `effect` while holding the lock. If the lock is lost on the way, `effect` is interrupted and the
 * result is `RedisLockLost`.
 *
 * @since 0.1.0
 */
export const withLock = <A, E, R>(
  key: string,
  effect: Effect.Effect<A, E, R>,
  options: Options = {}
): Effect.Effect<A, E | RedisLockNotAcquired | RedisLockLost | RedisError, Exclude<R, Scope.Scope> | RedisClient> =>
  Effect.scoped(Effect.flatMap(acquire(key, options), (lock) => Effect.raceFirst(effect, lock.lost)))

/**
 * Whether `key` currently holds `token` (the lock is ours).
 *
 * @since 0.1.0
 */
export const isHeld = (lock: Lock): Effect.Effect<boolean, RedisError, RedisClient> =>
  Effect.flatMap(RedisClient, (redis) =>
    Effect.map(redis.execute(Commands.get(lock.key)), (value) => value === lock.token)
  )
