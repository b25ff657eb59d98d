/**
 * The byte buffer behind a stream connection's receive operations.
 *
 * Bytes arrive in chunks of any size; the take operations cut them into messages: an exact count
 * (`takeExactly`), everything up to and including a sentinel (`takeUntil`), or whatever is there
 * (`takeAny`). Every take is synchronous and all-or-nothing: it either returns a whole result and
 * consumes exactly its bytes, or returns `undefined` and consumes nothing. That property is what lets a
 * receive lose a race without losing data.
 *
 * Returned arrays are never written again by the buffer, so callers may keep them.
 *
 * @since 0.1.0
 */

const MIN_CAPACITY = 16 * 1024

/**
 * A growable byte queue.
 *
 * @since 0.1.0
 */
export class ByteBuffer {
  /** Backing storage; bytes live in `[start, end)`. */
  private bytes: Buffer = Buffer.alloc(0)
  private start = 0
  private end = 0
  /** `true` when `bytes` is a chunk handed to `append` (never written to, may be handed out as a view). */
  private borrowed = true
  /** For `takeUntil`: bytes from `start` already known not to begin a match of `scannedFor`. */
  private scanned = 0
  private scannedFor: Uint8Array | undefined = undefined
  /**
   * Chunks appended after `[start, end)` and not merged into it yet: `takeAny` serves the contiguous
   * part without copying; the other takes merge first.
   */
  private queue: Array<Uint8Array> = []
  private queued = 0

  /** Number of buffered bytes. */
  get length(): number {
    return this.end - this.start + this.queued
  }

  /** Append a chunk. The buffer keeps a reference to it and never writes into it. */
  append(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return
    if (this.start === this.end && this.queue.length === 0) {
      this.borrow(chunk)
      return
    }
    this.queue.push(chunk)
    this.queued += chunk.byteLength
  }

  private borrow(chunk: Uint8Array): void {
    this.bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    this.start = 0
    this.end = chunk.byteLength
    this.borrowed = true
    this.scanned = 0
  }

  /** Merge the queued chunks into the contiguous region. */
  private merge(): void {
    if (this.queue.length === 0) return
    const chunks = this.queue
    this.queue = []
    this.queued = 0
    for (const chunk of chunks) this.appendContiguous(chunk)
  }

  private appendContiguous(chunk: Uint8Array): void {
    const size = chunk.byteLength
    if (this.start === this.end) {
      this.bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, size)
      this.start = 0
      this.end = size
      this.borrowed = true
      return
    }
    const length = this.end - this.start
    if (this.borrowed || this.end + size > this.bytes.byteLength) {
      const capacity = Math.max(MIN_CAPACITY, (length + size) * 2)
      const next = Buffer.allocUnsafe(capacity)
      this.bytes.copy(next, 0, this.start, this.end)
      this.bytes = next
      this.start = 0
      this.end = length
      this.borrowed = false
    }
    this.bytes.set(chunk, this.end)
    this.end += size
  }

  /** Exactly `n` bytes, or `undefined` when fewer are buffered. */
  takeExactly(n: number): Uint8Array | undefined {
    if (this.length < n) return undefined
    if (this.end - this.start < n) this.merge()
    return this.consume(n)
  }

  /**
   * The bytes up to and including the first occurrence of `sentinel`, or `undefined` when it is not
   * buffered yet. Repeated calls with the same sentinel scan each byte once.
   */
  takeUntil(sentinel: Uint8Array): Uint8Array | undefined {
    const index = this.indexOf(sentinel)
    return index < 0 ? undefined : this.consume(index + sentinel.byteLength)
  }

  /**
   * Position just past the first occurrence of `sentinel`, counted from the first buffered byte, or -1.
   * Does not consume.
   */
  indexOf(sentinel: Uint8Array): number {
    this.merge()
    if (this.scannedFor !== sentinel) {
      this.scannedFor = sentinel
      this.scanned = 0
    }
    const length = this.end - this.start
    if (length < sentinel.byteLength) return -1
    const from = this.start + this.scanned
    const found = this.bytes.subarray(0, this.end).indexOf(sentinel, from)
    if (found < 0) {
      this.scanned = Math.max(0, length - sentinel.byteLength + 1)
      return -1
    }
    return found - this.start
  }

  /** Up to `max` bytes of whatever is buffered, or `undefined` when empty. */
  takeAny(max: number): Uint8Array | undefined {
    if (this.start === this.end) {
      const next = this.queue.shift()
      if (next === undefined) return undefined
      this.queued -= next.byteLength
      this.borrow(next)
    }
    return this.consume(Math.min(this.end - this.start, max))
  }

  /** Everything buffered (possibly empty). */
  takeAll(): Uint8Array {
    this.merge()
    return this.consume(this.end - this.start)
  }

  private consume(n: number): Uint8Array {
    const from = this.start
    this.start += n
    this.scanned = Math.max(0, this.scanned - n)
    const out = this.borrowed
      ? this.bytes.subarray(from, from + n)
      : Uint8Array.prototype.slice.call(this.bytes, from, from + n)
    if (this.start === this.end) {
      this.start = 0
      this.end = 0
      if (!this.borrowed && this.bytes.byteLength > 4 * MIN_CAPACITY) this.bytes = Buffer.alloc(0)
    }
    return out
  }
}

/**
 * Make an empty buffer.
 *
 * @since 0.1.0
 */
export const make = (): ByteBuffer => new ByteBuffer()
