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

/**
 * Incremental RESP parser. Feed it chunks as they arrive and take replies with `next` until it returns
 * `undefined` (more bytes needed).
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
  private buffer: Buffer = Buffer.alloc(0)
  private offset = 0
  private pos = 0
  private readonly queued: Array<Buffer> = []
  private queuedBytes = 0
  /** Bytes (from `offset`) needed before another attempt can make progress. */
  private needed = 0
  private binary = false
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

  /** Bytes received and not yet parsed into a reply. */
  get buffered(): number {
    return this.buffer.length - this.offset + this.queuedBytes
  }

  /** Append received bytes. */
  feed(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (this.offset === this.buffer.length && this.queued.length === 0) {
      this.buffer = buf
      this.offset = 0
      return
    }
    this.queued.push(buf)
    this.queuedBytes += buf.length
  }

  /**
   * The next complete reply, or `undefined` when more bytes are needed. Bulk strings come back as
   * `Uint8Array` when `binary` is true. Throws {@link RespProtocolError} on bytes that are not RESP;
   * the parser is then unusable.
   */
  next(binary = false): RespValue | undefined {
    const available = this.buffer.length - this.offset
    if (available === 0 && this.queuedBytes === 0) return undefined
    if (available + this.queuedBytes < this.needed) return undefined
    if (this.queued.length > 0) {
      this.buffer = Buffer.concat([this.buffer.subarray(this.offset), ...this.queued])
      this.offset = 0
      this.queued.length = 0
      this.queuedBytes = 0
    }
    this.binary = binary
    this.pos = this.offset
    const value = this.parse(0)
    if (value === INCOMPLETE) {
      return undefined
    }
    this.offset = this.pos
    this.needed = 0
    if (this.offset === this.buffer.length) {
      this.buffer = EMPTY
      this.offset = 0
    }
    return value
  }

  private fail(reason: string, at: number): never {
    throw new RespProtocolError({ reason, offset: at - this.offset })
  }

  private incomplete(neededEnd: number): typeof INCOMPLETE {
    this.needed = neededEnd - this.offset
    return INCOMPLETE
  }

  /** End of the line starting at `pos` (index of its CR), or -1 if the CRLF has not arrived. */
  private lineEnd(): number {
    const buf = this.buffer
    const end = buf.indexOf(CR, this.pos)
    if (end === -1) {
      if (buf.length - this.pos > this.maxLineLength) this.fail("line too long", this.pos)
      this.needed = buf.length - this.offset + 1
      return -1
    }
    if (end - this.pos > this.maxLineLength) this.fail("line too long", this.pos)
    if (end + 1 >= buf.length) {
      this.needed = end + 2 - this.offset
      return -1
    }
    if (buf[end + 1] !== LF) this.fail("CR not followed by LF", end + 1)
    return end
  }

  /** A signed decimal integer in `[pos, end)`. */
  private integer(end: number): number | bigint {
    const buf = this.buffer
    let i = this.pos
    let negative = false
    if (buf[i] === 45) {
      negative = true
      i++
    } else if (buf[i] === 43) {
      i++
    }
    if (i === end) this.fail("empty integer", i)
    if (end - i > 15) {
      const text = buf.toString("latin1", this.pos, end)
      if (!/^[-+]?[0-9]+$/.test(text)) this.fail("invalid integer", this.pos)
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
  private length(end: number, limit: number): number {
    const n = this.integer(end)
    if (typeof n !== "number" || n < -1) this.fail("invalid length", this.pos)
    if (n > limit) this.fail(`length ${n} exceeds the limit ${limit}`, this.pos)
    return n
  }

  private parse(depth: number): RespValue | typeof INCOMPLETE {
    const buf = this.buffer
    const start = this.pos
    if (start >= buf.length) return this.incomplete(start + 1)
    const type = buf[start]
    this.pos = start + 1
    const end = this.lineEnd()
    if (end === -1) return INCOMPLETE
    switch (type) {
      case 43: {
        // + simple string
        const s = buf.toString("utf8", this.pos, end)
        this.pos = end + 2
        return s
      }
      case 45: {
        // - error
        const s = buf.toString("utf8", this.pos, end)
        this.pos = end + 2
        return toRespError(s)
      }
      case 58: {
        // : integer
        const n = this.integer(end)
        this.pos = end + 2
        return n
      }
      case 36: // $ bulk string
      case 33: // ! blob error
      case 61: {
        // = verbatim string
        const len = this.length(end, this.maxBulkLength)
        if (len === -1) {
          if (type !== 36) this.fail("null blob error or verbatim string", start)
          this.pos = end + 2
          return null
        }
        const from = end + 2
        const to = from + len
        if (to + 2 > buf.length) return this.incomplete(to + 2)
        if (buf[to] !== CR || buf[to + 1] !== LF) this.fail("bulk string not terminated by CRLF", to)
        this.pos = to + 2
        if (type === 33) return toRespError(buf.toString("utf8", from, to))
        if (type === 61) {
          if (len < 4 || buf[from + 3] !== 58) this.fail("verbatim string without a format", from)
          return this.binary ? Uint8Array.prototype.slice.call(buf, from + 4, to) : buf.toString("utf8", from + 4, to)
        }
        return this.binary ? Uint8Array.prototype.slice.call(buf, from, to) : buf.toString("utf8", from, to)
      }
      case 42: // * array
      case 126: // ~ set
      case 62: // > push
      case 37: // % map
      case 124: {
        // | attribute
        const count = this.length(end, this.maxAggregateLength)
        this.pos = end + 2
        if (count === -1) {
          if (type !== 42) this.fail("null aggregate", start)
          return null
        }
        if (depth >= this.maxDepth) this.fail("aggregates nested too deeply", start)
        if (type === 37 || type === 124) {
          const entries: Array<readonly [RespValue, RespValue]> = []
          for (let i = 0; i < count; i++) {
            const key = this.parse(depth + 1)
            if (key === INCOMPLETE) return INCOMPLETE
            const value = this.parse(depth + 1)
            if (value === INCOMPLETE) return INCOMPLETE
            entries.push([key, value])
          }
          // An attribute annotates the reply that follows it; the annotation is dropped.
          return type === 124 ? this.parse(depth) : new RespMap(entries)
        }
        const values: Array<RespValue> = []
        for (let i = 0; i < count; i++) {
          const value = this.parse(depth + 1)
          if (value === INCOMPLETE) return INCOMPLETE
          values.push(value)
        }
        return type === 42 ? values : type === 126 ? new RespSet(values) : new RespPush(values)
      }
      case 95: {
        // _ null
        if (end !== this.pos) this.fail("null with a payload", this.pos)
        this.pos = end + 2
        return null
      }
      case 35: {
        // # boolean
        const c = buf[this.pos]
        if (end !== this.pos + 1 || (c !== 116 && c !== 102)) this.fail("invalid boolean", this.pos)
        this.pos = end + 2
        return c === 116
      }
      case 44: {
        // , double
        const text = buf.toString("latin1", this.pos, end)
        const n =
          text === "inf"
            ? Infinity
            : text === "-inf"
              ? -Infinity
              : text === "nan" || text === "-nan"
                ? NaN
                : Number(text)
        if (Number.isNaN(n) && text !== "nan" && text !== "-nan") this.fail("invalid double", this.pos)
        if (text.length === 0) this.fail("empty double", this.pos)
        this.pos = end + 2
        return n
      }
      case 40: {
        // ( big number
        const text = buf.toString("latin1", this.pos, end)
        if (!/^[-+]?[0-9]+$/.test(text)) this.fail("invalid big number", this.pos)
        this.pos = end + 2
        return BigInt(text)
      }
      default:
        return this.fail(`unknown type byte 0x${(type ?? 0).toString(16)}`, start)
    }
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
