/**
 * A conversation's bounded mailbox: the queue of datagrams (or any messages) waiting for its handler.
 *
 * Unlike `effect/Queue`, a reader can wait for "something is there" without taking it (`awaitItem`), and
 * take synchronously (`poll`). That split is what lets `first` race a mailbox receive against a sleep
 * or an event and consume nothing when the receive loses.
 *
 * When full, the mailbox follows its policy: `"dropNewest"` refuses the new message, `"dropOldest"`
 * discards the oldest one, `"backpressure"` makes `offer` wait for room. Every message dropped is counted.
 *
 * Waiting readers (and writers) are woken through the Effect scheduler, as `effect/Queue` does, not
 * inside `offerUnsafe`/`poll`: the producer keeps running and a reader that wakes finds every message
 * offered meanwhile, instead of running nested in the producer's call once per message.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scheduler from "effect/Scheduler"

/**
 * What a full mailbox does with a new message.
 *
 * @since 0.1.0
 */
export type OverflowPolicy = "dropNewest" | "dropOldest" | "backpressure"

type Resume = (effect: Effect.Effect<void, MailboxClosed>) => void

/**
 * Raised to readers once a closed mailbox is empty.
 *
 * @since 0.1.0
 */
export class MailboxClosed {
  readonly _tag = "MailboxClosed"
}

const closedSignal = new MailboxClosed()
const closedFailure: Effect.Effect<never, MailboxClosed> = Effect.fail(closedSignal)
const succeedTrue: Effect.Effect<boolean> = Exit.succeed(true)
const succeedFalse: Effect.Effect<boolean> = Exit.succeed(false)

/** One dispatcher per scheduler, shared by every mailbox: wake-ups of one tick run in one batch. */
const dispatchers = new WeakMap<Scheduler.Scheduler, Scheduler.SchedulerDispatcher>()
let lastScheduler: Scheduler.Scheduler | undefined
let lastDispatcher: Scheduler.SchedulerDispatcher | undefined

const dispatcherOf = (scheduler: Scheduler.Scheduler): Scheduler.SchedulerDispatcher => {
  if (scheduler === lastScheduler && lastDispatcher !== undefined) return lastDispatcher
  let dispatcher = dispatchers.get(scheduler)
  if (dispatcher === undefined) {
    dispatcher = scheduler.makeDispatcher()
    dispatchers.set(scheduler, dispatcher)
  }
  lastScheduler = scheduler
  lastDispatcher = dispatcher
  return dispatcher
}

type ChangeResume = (effect: Effect.Effect<void>) => void

const WAKE_READERS = 1
const WAKE_WRITERS = 2

/**
 * A bounded FIFO with non-consuming waits.
 *
 * @since 0.1.0
 */
export class Mailbox<A> {
  private items: Array<A | undefined>
  private head = 0
  private count = 0
  // allocated on first wait: most mailboxes of idle conversations never have a writer waiting
  private readers: Array<Resume> | undefined = undefined
  private writers: Array<Resume> | undefined = undefined
  // The one reader of `awaitChange` a conversation usually has: a slot and its fiber, no array, no
  // cancellation effect (an abandoned wait is replaced by its fiber's next one; waking it is harmless).
  private changeReader: ChangeResume | undefined = undefined
  private changeReaderFiber = -1
  /** The dispatcher of the schedulers the waiters run on; set when one starts waiting. */
  private dispatcher: Scheduler.SchedulerDispatcher | undefined = undefined
  /** `WAKE_READERS | WAKE_WRITERS` bits of a wake-up already scheduled. */
  private wakePending = 0
  private closedFlag = false
  /** Messages discarded because the mailbox was full. */
  dropped = 0

  constructor(
    readonly capacity: number,
    readonly policy: OverflowPolicy
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new RangeError(`mailbox capacity must be >= 1, got ${capacity}`)
    this.items = new Array(Math.min(capacity, 4))
  }

  /** Messages waiting. */
  get size(): number {
    return this.count
  }

  get isClosed(): boolean {
    return this.closedFlag
  }

  /**
   * Add a message without waiting. Returns `false` when it (or, with `"dropOldest"`, the oldest message)
   * was dropped, or when the mailbox is closed. With `"backpressure"` a full mailbox refuses (use `offer`).
   */
  offerUnsafe(item: A): boolean {
    if (this.closedFlag) return false
    if (this.count === this.capacity) {
      if (this.policy === "dropOldest") {
        this.shift()
        this.dropped++
        this.push(item)
        return false
      }
      this.dropped++
      return false
    }
    this.push(item)
    return true
  }

  /**
   * Add a message. With `"backpressure"` it waits for room; with the dropping policies it never waits and
   * succeeds with whether the message went in without a drop.
   */
  offer(item: A): Effect.Effect<boolean> {
    if (this.policy !== "backpressure" || this.count < this.capacity || this.closedFlag) {
      return this.offerUnsafe(item) ? succeedTrue : succeedFalse
    }
    return Effect.suspend(() => this.waitForRoom()).pipe(
      Effect.map(() => this.offerUnsafe(item)),
      Effect.catch(() => succeedFalse)
    )
  }

  /** Take the oldest message, or `undefined` when empty. */
  poll(): A | undefined {
    if (this.count === 0) return undefined
    const item = this.shift()
    if (this.writers !== undefined && this.writers.length > 0) this.scheduleWake(WAKE_WRITERS)
    return item
  }

  /** Wait until a message is there (without taking it); fails with `MailboxClosed` once closed and empty. */
  get awaitItem(): Effect.Effect<void, MailboxClosed> {
    return Effect.suspend(() => {
      if (this.count > 0) return Effect.void
      if (this.closedFlag) return closedFailure
      const mailbox = this
      return Effect.callback<void, MailboxClosed>(function (resume) {
        mailbox.dispatcher = dispatcherOf(this)
        if (mailbox.readers === undefined) mailbox.readers = []
        const readers = mailbox.readers
        readers.push(resume)
        return Effect.sync(() => remove(readers, resume))
      })
    })
  }

  /**
   * Wait until the mailbox may have changed: a message arrived, `notify` was called, or it closed. Never
   * fails: the reader polls and checks `isClosed`. Lighter than `awaitItem` for a loop that is the only
   * reader of its mailbox (an idle conversation waits here): no cancellation effect is kept while it waits.
   * A second fiber waiting at the same time falls back to `awaitItem`'s waiter list.
   */
  get awaitChange(): Effect.Effect<void> {
    return Effect.withFiber((fiber) => {
      if (this.count > 0 || this.closedFlag) return Effect.void
      const fiberId = fiber.id
      const mailbox = this
      if (this.changeReader !== undefined && this.changeReaderFiber !== fiberId) return Effect.ignore(this.awaitItem)
      return Effect.callback<void>(function (resume) {
        mailbox.dispatcher = dispatcherOf(this)
        mailbox.changeReader = resume
        mailbox.changeReaderFiber = fiberId
      })
    })
  }

  /**
   * Wake every reader waiting in `awaitItem` without adding a message, so that it polls again. A transport
   * uses it to deliver something that is not a message (an error report) to a waiting receive.
   */
  notify(): void {
    if (this.hasReaders()) this.scheduleWake(WAKE_READERS)
  }

  private hasReaders(): boolean {
    return this.changeReader !== undefined || (this.readers !== undefined && this.readers.length > 0)
  }

  private wakeChangeReader(): void {
    const resume = this.changeReader
    if (resume === undefined) return
    this.changeReader = undefined
    this.changeReaderFiber = -1
    resume(Effect.void)
  }

  /** Refuse new messages; readers drain what is there, then see `MailboxClosed`. */
  close(): void {
    if (this.closedFlag) return
    this.closedFlag = true
    this.wakeChangeReader()
    if (this.readers !== undefined) wakeAll(this.readers, this.count > 0 ? Effect.void : closedFailure)
    if (this.writers !== undefined) wakeAll(this.writers, closedFailure)
  }

  /** Close and discard everything waiting. */
  clear(): void {
    this.items = new Array(1)
    this.head = 0
    this.count = 0
    this.close()
  }

  private waitForRoom(): Effect.Effect<void, MailboxClosed> {
    if (this.closedFlag) return closedFailure
    if (this.count < this.capacity) return Effect.void
    const mailbox = this
    return Effect.callback<void, MailboxClosed>(function (resume) {
      mailbox.dispatcher = dispatcherOf(this)
      if (mailbox.writers === undefined) mailbox.writers = []
      const writers = mailbox.writers
      writers.push(resume)
      return Effect.sync(() => remove(writers, resume))
    }).pipe(Effect.andThen(Effect.suspend(() => this.waitForRoom())))
  }

  private push(item: A): void {
    if (this.count === this.items.length) this.grow()
    this.items[(this.head + this.count) % this.items.length] = item
    this.count++
    if (this.hasReaders()) this.scheduleWake(WAKE_READERS)
  }

  /** Wake the waiting readers or writers on the scheduler's next batch; they check again when they run. */
  private scheduleWake(which: number): void {
    if ((this.wakePending & which) !== 0) return
    const dispatcher = this.dispatcher
    if (dispatcher === undefined) {
      this.wake(which)
      return
    }
    const first = this.wakePending === 0
    this.wakePending |= which
    if (first) {
      dispatcher.scheduleTask(() => {
        const pending = this.wakePending
        this.wakePending = 0
        this.wake(pending)
      }, 0)
    }
  }

  private wake(which: number): void {
    if ((which & WAKE_READERS) !== 0) {
      this.wakeChangeReader()
      if (this.readers !== undefined) wakeAll(this.readers, Effect.void)
    }
    if ((which & WAKE_WRITERS) !== 0 && this.writers !== undefined) wakeAll(this.writers, Effect.void)
  }

  private shift(): A | undefined {
    const item = this.items[this.head]
    this.items[this.head] = undefined
    this.head = (this.head + 1) % this.items.length
    this.count--
    return item
  }

  private grow(): void {
    const next = new Array<A | undefined>(Math.min(this.capacity, this.items.length * 2))
    for (let i = 0; i < this.count; i++) next[i] = this.items[(this.head + i) % this.items.length]
    this.items = next
    this.head = 0
  }
}

const wakeAll = (waiters: Array<Resume>, effect: Effect.Effect<void, MailboxClosed>): void => {
  // the common case is one reader: no copy
  if (waiters.length === 1) {
    const resume = waiters[0]
    waiters.length = 0
    if (resume !== undefined) resume(effect)
    return
  }
  const woken = waiters.splice(0, waiters.length)
  for (const resume of woken) resume(effect)
}

const remove = (waiters: Array<Resume>, resume: Resume): void => {
  const index = waiters.indexOf(resume)
  if (index >= 0) waiters.splice(index, 1)
}

/**
 * Make a mailbox.
 *
 * @example
 * ```ts
 * import { Mailbox } from "@diesel/core"
 * const mailbox = Mailbox.make<Uint8Array>({ capacity: 256, policy: "dropOldest" })
 * ```
 *
 * @since 0.1.0
 */
export const make = <A>(options: {
  readonly capacity: number
  readonly policy?: OverflowPolicy | undefined
}): Mailbox<A> => new Mailbox<A>(options.capacity, options.policy ?? "dropNewest")
