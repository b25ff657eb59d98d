/**
 * A virtual clock that advances by itself: whenever every fiber is waiting (no task is scheduled), time
 * jumps to the earliest pending `Effect.sleep` and wakes the fibers due then, in the order they went to
 * sleep. A simulated minute passes as fast as the program can run, with no `TestClock.adjust` in the
 * test, and the run is as deterministic as `TestClock`.
 *
 * Everything that waits through effect's `Clock` (sleeps, timeouts, schedules, the simulated network)
 * follows it. Real I/O and promises do not: time may jump while a promise is pending, so use it for
 * programs that talk only through the simulated network.
 *
 * @example
 * ```ts
 * import { SimClock, SimNetwork } from "@diesel/sim"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   yield* Effect.sleep("1 hour") // returns at once, one virtual hour later
 * }).pipe(Effect.provide(SimNetwork.layer({ seed: 1 })), Effect.provide(SimClock.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Scheduler from "effect/Scheduler"
import { EventQueue } from "./internal/EventQueue.js"

/**
 * The virtual clock.
 *
 * @since 0.1.0
 */
export interface SimClock extends Clock.Clock {
  readonly _tag: "SimClock"
  /** The scheduler that tells the clock when every fiber is waiting. */
  readonly scheduler: Scheduler.Scheduler
  /** Sleeps still pending. */
  readonly pendingSleeps: () => number
  /**
   * Run `run` (synchronously, outside any fiber) when virtual time reaches `time`, among the sleeps due
   * then, in registration order. Cancel by setting `cancelled`.
   */
  readonly schedule: (time: number, run: () => void) => { cancelled: boolean }
}

// runs after the other tasks of a batch
const checkPriority = Number.MAX_SAFE_INTEGER

class VirtualClock implements SimClock {
  readonly _tag = "SimClock"
  private now: number
  private readonly sleeps = new EventQueue()
  private live = 0
  private pending = 0
  private checking = false
  private readonly checker: Scheduler.SchedulerDispatcher
  readonly scheduler: Scheduler.Scheduler

  constructor(parent: Scheduler.Scheduler, start: number) {
    this.now = start
    this.checker = parent.makeDispatcher()
    this.scheduler = {
      executionMode: parent.executionMode,
      shouldYield: (fiber) => parent.shouldYield(fiber),
      makeDispatcher: () => {
        const dispatcher = parent.makeDispatcher()
        return {
          scheduleTask: (task, priority) => {
            this.pending++
            dispatcher.scheduleTask(() => {
              try {
                task()
              } finally {
                if (--this.pending === 0) this.kick()
              }
            }, priority)
          },
          flush: () => dispatcher.flush()
        }
      }
    }
  }

  currentTimeMillisUnsafe(): number {
    return this.now
  }
  readonly currentTimeMillis: Effect.Effect<number> = Effect.sync(() => this.now)
  currentTimeNanosUnsafe(): bigint {
    return BigInt(Math.round(this.now * 1_000_000))
  }
  readonly currentTimeNanos: Effect.Effect<bigint> = Effect.sync(() => this.currentTimeNanosUnsafe())
  monotonicTimeNanosUnsafe(): bigint {
    return this.currentTimeNanosUnsafe()
  }
  readonly monotonicTimeNanos: Effect.Effect<bigint> = Effect.sync(() => this.currentTimeNanosUnsafe())

  pendingSleeps(): number {
    return this.live
  }

  sleep(duration: Duration.Duration): Effect.Effect<void> {
    const millis = Duration.toMillis(duration)
    if (!(millis > 0)) return Effect.yieldNow
    return Effect.callback<void>((resume) => {
      let done = false
      this.live++
      const event = this.sleeps.push(Number.isFinite(millis) ? this.now + millis : Number.POSITIVE_INFINITY, () => {
        done = true
        this.live--
        resume(Effect.void)
      })
      this.kick()
      return Effect.sync(() => {
        if (done) return
        event.cancelled = true
        this.live--
      })
    })
  }

  schedule(time: number, run: () => void): { cancelled: boolean } {
    const event = this.sleeps.push(Math.max(time, this.now), run)
    this.kick()
    return event
  }

  /** Schedule a check for idleness after the tasks queued so far. */
  private kick(): void {
    if (this.checking) return
    this.checking = true
    this.checker.scheduleTask(() => {
      this.checking = false
      this.advance()
    }, checkPriority)
  }

  private advance(): void {
    if (this.pending > 0) return
    const next = this.sleeps.peekTime()
    if (next === undefined || !Number.isFinite(next)) return
    if (next > this.now) this.now = next
    while (true) {
      const time = this.sleeps.peekTime()
      if (time === undefined || time > this.now) break
      const event = this.sleeps.pop()
      if (event === undefined) break
      if (!event.cancelled) event.run()
    }
    if (this.pending === 0) this.kick()
  }
}

/**
 * A virtual clock over `parent` (the scheduler in use). Provide both its `Clock` and its `scheduler`.
 *
 * @since 0.1.0
 */
export const makeUnsafe = (parent: Scheduler.Scheduler, start = 0): SimClock => new VirtualClock(parent, start)

/**
 * Whether a clock is a `SimClock`.
 *
 * @since 0.1.0
 */
export const isSimClock = (clock: Clock.Clock): clock is SimClock => "_tag" in clock && clock._tag === "SimClock"

/**
 * Provide a virtual clock (and the scheduler it watches) to everything under it, starting at time 0.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<never> = Layer.effectContext(
  Effect.gen(function* () {
    const clock = makeUnsafe(yield* Scheduler.Scheduler)
    return Context.make(Clock.Clock, clock).pipe(Context.add(Scheduler.Scheduler, clock.scheduler))
  })
)
