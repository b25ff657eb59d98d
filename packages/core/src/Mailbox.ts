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
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"

/**
 * What a full mailbox does with a new message.
 *
 * @since 0.1.0
 */
export type OverflowPolicy = "dropNewest" | "dropOldest" | "backpressure"

type Resume = (effect: Effect.Effect<void>) => void
type WriterResume = (effect: Effect.Effect<void, MailboxClosed>) => void

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

/**
 * A bounded FIFO with non-consuming waits.
 *
 * @since 0.1.0
 */
export class Mailbox<A> {
  private items: Array<A | undefined>
  private head = 0
  private count = 0
  // One reader is the common case: it takes a slot, further readers an array made on demand (most
  // mailboxes of idle conversations never have a second reader or a writer waiting).
  private reader: Resume | undefined = undefined
  private readerFiber = -1
  private readers: Array<Resume> | undefined = undefined
  private writers: Array<WriterResume> | undefined = undefined
  private closedFlag = false
  /** Messages discarded because the mailbox was full. */
  dropped = 0

  constructor(
    readonly capacity: number,
    readonly policy: OverflowPolicy
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new RangeError(`mailbox capacity must be >= 1, got ${capacity}`)
    this.items = new Array(Math.min(capacity, 2))
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
    return this.offerQuietly(item, true)
  }

  /**
   * `offerUnsafe`, waking waiting readers only if `wake` is true. A producer that delivers a batch can add
   * every message quietly and `notify` once at the end, so that a reader handles the batch in one go.
   */
  offerQuietly(item: A, wake: boolean): boolean {
    if (this.closedFlag) return false
    if (this.count === this.capacity) {
      if (this.policy === "dropOldest") {
        this.shift()
        this.dropped++
        this.push(item, wake)
        return false
      }
      this.dropped++
      return false
    }
    this.push(item, wake)
    return true
  }

  /**
   * Add a message. With `"backpressure"` it waits for room; with the dropping policies it never waits and
   * succeeds with whether the message went in without a drop.
   */
  offer(item: A): Effect.Effect<boolean> {
    if (this.policy !== "backpressure" || this.count < this.capacity || this.closedFlag) {
      return Effect.succeed(this.offerUnsafe(item))
    }
    return Effect.suspend(() => this.waitForRoom()).pipe(
      Effect.map(() => this.offerUnsafe(item)),
      Effect.orElseSucceed(() => false)
    )
  }

  /** Take the oldest message, or `undefined` when empty. */
  poll(): A | undefined {
    if (this.count === 0) return undefined
    const item = this.shift()
    if (this.writers !== undefined && this.writers.length > 0) wakeAll(this.writers, Effect.void)
    return item
  }

  /**
   * Wait until a message is there (without taking it); fails with `MailboxClosed` once closed and empty. It
   * also returns, with nothing there, after `notify`: poll again.
   */
  get awaitItem(): Effect.Effect<void, MailboxClosed> {
    return Effect.suspend(() => {
      if (this.count > 0) return Effect.void
      if (this.closedFlag) return closedFailure
      return Effect.flatMap(this.awaitChange, () => (this.count === 0 && this.closedFlag ? closedFailure : Effect.void))
    })
  }

  /**
   * Wait until the mailbox may have changed: a message arrived, `notify` was called, or it closed. Never
   * fails: the reader polls and checks `isClosed`. Light on memory while it waits: the one reader a mailbox
   * usually has takes a slot, and keeps no cancellation effect (a reader that was interrupted is replaced by
   * its fiber's next wait; waking it is harmless).
   */
  get awaitChange(): Effect.Effect<void> {
    return Effect.withFiber((fiber) => {
      if (this.count > 0 || this.closedFlag) return Effect.void
      const fiberId = fiber.id
      return Effect.callback<void>((resume) => this.park(resume, fiberId))
    })
  }

  private park(resume: Resume, fiberId: number): Effect.Effect<void> | undefined {
    if (this.reader === undefined || this.readerFiber === fiberId) {
      this.reader = resume
      this.readerFiber = fiberId
      return undefined
    }
    if (this.readers === undefined) this.readers = []
    const readers = this.readers
    readers.push(resume)
    return Effect.sync(() => remove(readers, resume))
  }

  /**
   * Wake every reader waiting in `awaitItem` without adding a message, so that it polls again. A transport
   * uses it to deliver something that is not a message (an error report) to a waiting receive.
   */
  notify(): void {
    this.wakeReaders()
  }

  private wakeReaders(): void {
    const first = this.reader
    const rest = this.readers
    this.reader = undefined
    this.readerFiber = -1
    if (rest !== undefined && rest.length > 0) {
      this.readers = undefined
      if (first !== undefined) first(Effect.void)
      for (const resume of rest) resume(Effect.void)
    } else if (first !== undefined) first(Effect.void)
  }

  /** Refuse new messages; readers drain what is there, then see `MailboxClosed`. */
  close(): void {
    if (this.closedFlag) return
    this.closedFlag = true
    this.wakeReaders()
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
    return Effect.callback<void, MailboxClosed>((resume) => {
      if (this.writers === undefined) this.writers = []
      const writers = this.writers
      writers.push(resume)
      return Effect.sync(() => remove(writers, resume))
    }).pipe(Effect.andThen(Effect.suspend(() => this.waitForRoom())))
  }

  private push(item: A, wake: boolean): void {
    if (this.count === this.items.length) this.grow()
    this.items[(this.head + this.count) % this.items.length] = item
    this.count++
    if (wake && (this.reader !== undefined || this.readers !== undefined)) this.wakeReaders()
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

const wakeAll = (waiters: Array<WriterResume>, effect: Effect.Effect<void, MailboxClosed>): void => {
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

const remove = <F>(waiters: Array<F>, resume: F): void => {
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
