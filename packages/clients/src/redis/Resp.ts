/**
 * The Redis serialization protocol (RESP2 and RESP3): an incremental reply parser that accepts any
 * chunking of the byte stream, and the command encoder.
 *
 * The parser is bounded: bulk and aggregate lengths, nesting depth and line length all have limits, and
 * anything that is not RESP is a {@link RespProtocolError}, never a throw of another kind, a hang or an
 * unbounded allocation.
 *
 * @since 0.1.0
 */
import { isAscii } from "node:buffer"
import * as Data from "effect/Data"

/**
 * An error reply nested inside an aggregate (an `EXEC` result, for example). A top-level error reply
 * becomes a failure of the command instead.
 *
 * @since 0.1.0
 */
export class RespError {
  constructor(
    /** The first word of the message: `ERR`, `WRONGTYPE`, `NOSCRIPT`, ... */
    readonly code: string,
    readonly message: string
  ) {}
}

/**
 * A RESP3 map (`%`). Keys keep their wire order; use {@link toRecord} for string keys.
 *
 * @since 0.1.0
 */
export class RespMap {
  constructor(readonly entries: ReadonlyArray<readonly [RespValue, RespValue]>) {}
}

/**
 * A RESP3 set (`~`).
 *
 * @since 0.1.0
 */
export class RespSet {
  constructor(readonly values: ReadonlyArray<RespValue>) {}
}

/**
 * A RESP3 out-of-band push (`>`): pub/sub messages, client-side caching invalidations.
 *
 * @since 0.1.0
 */
export class RespPush {
  constructor(readonly values: ReadonlyArray<RespValue>) {}
}

/**
 * Any reply value. Bulk strings are `string` (UTF-8) or `Uint8Array` depending on how the command was
 * issued; integers outside the safe range are `bigint`; RESP3 doubles are `number`; nulls are `null`.
 *
 * @since 0.1.0
 */
export type RespValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | Uint8Array
  | RespError
  | RespMap
  | RespSet
  | RespPush
  | ReadonlyArray<RespValue>

/**
 * The byte stream is not RESP, or exceeds a limit.
 *
 * @since 0.1.0
 */
export class RespProtocolError extends Data.TaggedError("RespProtocolError")<{
  readonly reason: string
  /** Offset of the offending byte in the parser's buffer. */
  readonly offset: number
}> {
  override get message(): string {
    return `RESP protocol error at byte ${this.offset}: ${this.reason}`
  }
}

/**
 * Limits applied while parsing.
 *
 * @since 0.1.0
 */
export interface ParserLimits {
  /** Largest bulk string accepted (default 512 MiB, Redis' own `proto-max-bulk-len`). */
  readonly maxBulkLength?: number | undefined
  /** Largest aggregate (array, map, set, push) element count (default 2^24). */
  readonly maxAggregateLength?: number | undefined
  /** Deepest nesting of aggregates (default 64). */
  readonly maxDepth?: number | undefined
  /** Longest simple line (status, error, number) before its CRLF (default 64 KiB). */
  readonly maxLineLength?: number | undefined
}

const CR = 13
const LF = 10

/** Returned by the internal parse steps when more bytes are needed. */
const INCOMPLETE: unique symbol = Symbol.for("@diesel/clients/redis/Resp/Incomplete")
/** Returned by the internal parse step when it opened an aggregate (its elements follow). */
const OPENED: unique symbol = Symbol.for("@diesel/clients/redis/Resp/Opened")

/**
 * An aggregate whose elements are still arriving. Kept between chunks, so a reply's elements are parsed
 * once however the reply is split: only the element cut by the end of a chunk is parsed again.
 */
interface Frame {
  /** The type byte: `*`, `~`, `>`, `%` or `|`. */
  readonly type: number
  /** Elements still expected (a map counts keys and values). */
  remaining: number
  readonly items: Array<RespValue>
}

/**
 * Incremental RESP parser. Feed it chunks as they arrive and take replies with `next` until it returns
 * `undefined` (more bytes needed).
 *
 * The parser keeps the aggregates it has started between chunks: each byte is parsed once, except those
 * of the one element a chunk boundary cuts (and a bulk string is waited for, not re-parsed: the parser
 * knows how many bytes it needs). A reply of any size costs time in proportion to its size, however it
 * is split, and the parser holds its parsed elements plus at most one element's bytes.
 *
 * @example
 * ```ts
 * const parser = new Resp.Parser()
 * parser.feed(Buffer.from("+OK\r\n:4"))
 * parser.next() // "OK"
 * parser.next() // undefined
 * parser.feed(Buffer.from("2\r\n"))
 * parser.next() // 42
 * ```
 *
 * @since 0.1.0
 */
export class Parser {
  private buffer: Buffer = EMPTY
  /** Where the next element starts in `buffer`. */
  private pos = 0
  /** Stream offset of `buffer[0]` (for error offsets). */
  private base = 0
  /** Stream offset of the reply being parsed. */
  private replyStart = 0
  private readonly queued: Array<Buffer> = []
  private queuedBytes = 0
  /** Bytes (from `pos`) needed before another attempt can make progress. */
  private needed = 0
  private binary = false
  /** Whether `buffer` is all ASCII; `undefined` until a string needs it. */
  private ascii: boolean | undefined = undefined
  /** The aggregates being filled, outermost first. */
  private readonly stack: Array<Frame> = []
  private readonly maxBulkLength: number
  private readonly maxAggregateLength: number
  private readonly maxDepth: number
  private readonly maxLineLength: number

  constructor(limits: ParserLimits = {}) {
    this.maxBulkLength = limits.maxBulkLength ?? 512 * 1024 * 1024
    this.maxAggregateLength = limits.maxAggregateLength ?? 1 << 24
    this.maxDepth = limits.maxDepth ?? 64
    this.maxLineLength = limits.maxLineLength ?? 64 * 1024
  }

  /** Bytes received and not yet parsed (the elements of a reply in progress are parsed already). */
  get buffered(): number {
    return this.buffer.length - this.pos + this.queuedBytes
  }

  /** Append received bytes. */
  feed(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (this.pos === this.buffer.length && this.queued.length === 0) {
      this.base += this.buffer.length
      this.buffer = buf
      this.ascii = undefined
      this.pos = 0
      return
    }
    this.queued.push(buf)
    this.queuedBytes += buf.length
  }

  /**
   * The next complete reply, or `undefined` when more bytes are needed. Bulk strings come back as
   * `Uint8Array` when `binary` is true (read when a reply starts: a reply split across calls keeps the
   * mode it started with). Throws {@link RespProtocolError} on bytes that are not RESP; the parser is
   * then unusable.
   */
  next(binary = false): RespValue | undefined {
    const stack = this.stack
    if (stack.length === 0) this.binary = binary
    const available = this.buffer.length - this.pos + this.queuedBytes
    if (available === 0 || available < this.needed) return undefined
    if (this.queued.length > 0) this.merge()
    this.needed = 0
    while (true) {
      if (stack.length === 0) this.replyStart = this.base + this.pos
      let value = this.element()
      if (value === INCOMPLETE) return undefined
      if (value === OPENED) continue
      // fold the complete element into the aggregates it ends
      while (true) {
        const top = stack[stack.length - 1]
        if (top === undefined) {
          if (this.pos === this.buffer.length) {
            this.base += this.buffer.length
            this.buffer = EMPTY
            this.pos = 0
          }
          return value
        }
        top.items.push(value)
        if (--top.remaining > 0) break
        stack.pop()
        const done = finish(top)
        if (done === OPENED) break // an attribute ended: the value it annotates follows
        value = done
      }
    }
  }

  /** Join what is left of the buffer (the start of one element at most) with the queued chunks. */
  private merge(): void {
    const rest = this.buffer.length - this.pos
    this.base += this.pos
    if (rest === 0 && this.queued.length === 1) {
      this.buffer = this.queued[0] ?? EMPTY
    } else {
      const parts = rest === 0 ? this.queued : [this.buffer.subarray(this.pos), ...this.queued]
      this.buffer = Buffer.concat(parts, rest + this.queuedBytes)
    }
    this.ascii = undefined
    this.pos = 0
    this.queued.length = 0
    this.queuedBytes = 0
  }

  private fail(reason: string, at: number): never {
    throw new RespProtocolError({ reason, offset: this.base + at - this.replyStart })
  }

  private incomplete(start: number, neededEnd: number): typeof INCOMPLETE {
    this.pos = start
    this.needed = neededEnd - start
    return INCOMPLETE
  }

  /** End of the line whose payload starts at `from` (index of its CR), or -1 if the CRLF has not arrived. */
  private lineEnd(start: number, from: number): number {
    const buf = this.buffer
    // A loop rather than `indexOf`: lines are a few bytes long (lengths, integers), and a native call per
    // element cost more than the scan.
    const length = buf.length
    const limit = Math.min(length, from + this.maxLineLength + 1)
    let end = from
    while (end < limit && buf[end] !== CR) end++
    if (end === limit) {
      if (end - from > this.maxLineLength) this.fail("line too long", from)
      this.needed = length - start + 1
      return -1
    }
    if (end + 1 >= length) {
      this.needed = end + 2 - start
      return -1
    }
    if (buf[end + 1] !== LF) this.fail("CR not followed by LF", end + 1)
    return end
  }

  /**
   * Text of `[from, to)`. When the whole buffer is ASCII (checked once per buffer, in native code), the
   * Latin-1 decoder gives the same string for less than UTF-8's.
   */
  private text(from: number, to: number): string {
    let ascii = this.ascii
    if (ascii === undefined) {
      ascii = isAscii(this.buffer)
      this.ascii = ascii
    }
    return this.buffer.toString(ascii ? "latin1" : "utf8", from, to)
  }

  /** A signed decimal integer in `[from, end)`. */
  private integer(from: number, end: number): number | bigint {
    const buf = this.buffer
    let i = from
    let negative = false
    if (buf[i] === 45) {
      negative = true
      i++
    } else if (buf[i] === 43) {
      i++
    }
    if (i === end) this.fail("empty integer", i)
    if (end - i > 15) {
      const text = buf.toString("latin1", from, end)
      if (!/^[-+]?[0-9]+$/.test(text)) this.fail("invalid integer", from)
      const big = BigInt(text)
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big
    }
    let n = 0
    for (; i < end; i++) {
      const c = buf[i] ?? 0
      if (c < 48 || c > 57) this.fail("invalid integer", i)
      n = n * 10 + (c - 48)
    }
    return negative ? -n : n
  }

  /** A length prefix: an integer in `[-1, limit]`. */
  private length(from: number, end: number, limit: number): number {
    const n = this.integer(from, end)
    if (typeof n !== "number" || n < -1) this.fail("invalid length", from)
    if (n > limit) this.fail(`length ${n} exceeds the limit ${limit}`, from)
    return n
  }

  /**
   * One element at `pos`: a complete scalar (or empty or null aggregate), `OPENED` when an aggregate's
   * header was read (a frame is pushed, its elements follow), or `INCOMPLETE` (`pos` stays at the element).
   */
  private element(): RespValue | typeof INCOMPLETE | typeof OPENED {
    const buf = this.buffer
    const start = this.pos
    if (start >= buf.length) return this.incomplete(start, start + 1)
    const type = buf[start]
    const from = start + 1
    const end = this.lineEnd(start, from)
    if (end === -1) {
      const needed = this.needed
      return this.incomplete(start, start + needed)
    }
    switch (type) {
      case 43: {
        // + simple string
        this.pos = end + 2
        return buf.toString("utf8", from, end)
      }
      case 45: {
        // - error
        this.pos = end + 2
        return toRespError(buf.toString("utf8", from, end))
      }
      case 58: {
        // : integer
        const n = this.integer(from, end)
        this.pos = end + 2
        return n
      }
      case 36: // $ bulk string
      case 33: // ! blob error
      case 61: {
        // = verbatim string
        const len = this.length(from, end, this.maxBulkLength)
        if (len === -1) {
          if (type !== 36) this.fail("null blob error or verbatim string", start)
          this.pos = end + 2
          return null
        }
        const first = end + 2
        const to = first + len
        if (to + 2 > buf.length) return this.incomplete(start, to + 2)
        if (buf[to] !== CR || buf[to + 1] !== LF) this.fail("bulk string not terminated by CRLF", to)
        this.pos = to + 2
        if (type === 33) return toRespError(buf.toString("utf8", first, to))
        if (type === 61) {
          if (len < 4 || buf[first + 3] !== 58) this.fail("verbatim string without a format", first)
          return this.binary ? Uint8Array.prototype.slice.call(buf, first + 4, to) : this.text(first + 4, to)
        }
        return this.binary ? Uint8Array.prototype.slice.call(buf, first, to) : this.text(first, to)
      }
      case 42: // * array
      case 126: // ~ set
      case 62: // > push
      case 37: // % map
      case 124: {
        // | attribute
        const count = this.length(from, end, this.maxAggregateLength)
        if (count === -1) {
          if (type !== 42) this.fail("null aggregate", start)
          this.pos = end + 2
          return null
        }
        if (this.stack.length >= this.maxDepth) this.fail("aggregates nested too deeply", start)
        this.pos = end + 2
        if (count === 0) {
          const done = finish({ type, remaining: 0, items: [] })
          // an empty attribute annotates nothing: go on with the value that follows
          return done === OPENED ? OPENED : done
        }
        this.stack.push({ type, remaining: type === 37 || type === 124 ? count * 2 : count, items: [] })
        return OPENED
      }
      case 95: {
        // _ null
        if (end !== from) this.fail("null with a payload", from)
        this.pos = end + 2
        return null
      }
      case 35: {
        // # boolean
        const c = buf[from]
        if (end !== from + 1 || (c !== 116 && c !== 102)) this.fail("invalid boolean", from)
        this.pos = end + 2
        return c === 116
      }
      case 44: {
        // , double
        const text = buf.toString("latin1", from, end)
        const n =
          text === "inf"
            ? Infinity
            : text === "-inf"
              ? -Infinity
              : text === "nan" || text === "-nan"
                ? NaN
                : Number(text)
        if (Number.isNaN(n) && text !== "nan" && text !== "-nan") this.fail("invalid double", from)
        if (text.length === 0) this.fail("empty double", from)
        this.pos = end + 2
        return n
      }
      case 40: {
        // ( big number
        const text = buf.toString("latin1", from, end)
        if (!/^[-+]?[0-9]+$/.test(text)) this.fail("invalid big number", from)
        this.pos = end + 2
        return BigInt(text)
      }
      default:
        return this.fail(`unknown type byte 0x${(type ?? 0).toString(16)}`, start)
    }
  }
}

/** The value of a completed aggregate; `OPENED` for an attribute (dropped: it annotates what follows). */
const finish = (frame: Frame): RespValue | typeof OPENED => {
  const items = frame.items
  switch (frame.type) {
    case 42:
      return items
    case 126:
      return new RespSet(items)
    case 62:
      return new RespPush(items)
    case 37: {
      const entries: Array<readonly [RespValue, RespValue]> = []
      for (let i = 0; i < items.length; i += 2) entries.push([items[i] ?? null, items[i + 1] ?? null])
      return new RespMap(entries)
    }
    default:
      return OPENED
  }
}

const EMPTY = Buffer.alloc(0)

const toRespError = (line: string): RespError => {
  const space = line.indexOf(" ")
  return space === -1 ? new RespError(line, line) : new RespError(line.slice(0, space), line.slice(space + 1))
}

/**
 * One argument of a command. Numbers are sent in decimal; `Uint8Array` is sent as is (binary safe).
 *
 * @since 0.1.0
 */
export type Arg = string | number | bigint | Uint8Array

/**
 * Encode a command as a RESP array of bulk strings. Returns a string when every argument is text
 * (the socket encodes it once) and a list of chunks when some are binary.
 *
 * @example
 * ```ts
 * Resp.encode(["SET", "k", "v"]) // "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
 * ```
 *
 * @since 0.1.0
 */
export const encode = (args: ReadonlyArray<Arg>): string | Array<string | Uint8Array> => {
  let out = `*${args.length}\r\n`
  let chunks: Array<string | Uint8Array> | undefined
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as Arg
    if (typeof arg === "string") {
      out += `$${byteLength(arg)}\r\n${arg}\r\n`
    } else if (typeof arg === "number" || typeof arg === "bigint") {
      const s = String(arg)
      out += `$${s.length}\r\n${s}\r\n`
    } else {
      chunks ??= []
      chunks.push(`${out}$${arg.length}\r\n`, arg)
      out = "\r\n"
    }
  }
  if (chunks === undefined) return out
  chunks.push(out)
  return chunks
}

/** UTF-8 length of a string, without encoding it when it is ASCII. */
const byteLength = (s: string): number => {
  const n = s.length
  if (n < 64) {
    for (let i = 0; i < n; i++) {
      if (s.charCodeAt(i) > 127) return Buffer.byteLength(s, "utf8")
    }
    return n
  }
  return Buffer.byteLength(s, "utf8")
}

/**
 * A RESP3 map, or a RESP2 flat key/value array, as a record with string keys.
 *
 * @since 0.1.0
 */
export const toRecord = (value: RespValue): Record<string, RespValue> | undefined => {
  const out: Record<string, RespValue> = {}
  if (value instanceof RespMap) {
    for (const [k, v] of value.entries) out[keyString(k)] = v
    return out
  }
  if (Array.isArray(value)) {
    const list = value as ReadonlyArray<RespValue>
    if (list.length % 2 !== 0) return undefined
    for (let i = 0; i < list.length; i += 2) out[keyString(list[i] ?? null)] = list[i + 1] ?? null
    return out
  }
  return undefined
}

const keyString = (k: RespValue): string =>
  typeof k === "string" ? k : k instanceof Uint8Array ? Buffer.from(k).toString("utf8") : String(k)
