/**
 * The chunked transfer coding (RFC 9112 section 7.1): an incremental decoder with the strictness of
 * llhttp (hex sizes only, no whitespace after the size, CRLF after every chunk, trailers checked like
 * headers) and the encoder.
 *
 * @since 0.1.0
 */
import * as Http1 from "./Http1.js"
import { HttpParseError } from "./HttpParseError.js"
import { CR, HEX, LF, VALUE } from "./internal/chars.js"

/**
 * Limits of a chunked body: the body's total size (default unbounded), the trailer section (default
 * 16 KiB, as a head) and a chunk extension (default 1 KiB).
 *
 * @since 0.1.0
 * @category models
 */
export interface Limits {
  readonly maxBodySize?: number | undefined
  readonly maxTrailerSize?: number | undefined
  readonly maxExtensionSize?: number | undefined
}

const SIZE = 0
const SIZE_DIGITS = 1
const EXTENSION = 2
const SIZE_LF = 3
const DATA = 4
const DATA_CR = 5
const DATA_LF = 6
const TRAILER = 7
const DONE = 8

// 2^53: sizes past it cannot be counted exactly
const MAX_SIZE_DIGITS = 13

/**
 * An incremental chunked decoder for one body. Feed it the bytes as they arrive; it hands out the data
 * as views of the input (no copy) and says where the body ended.
 *
 * @example
 * ```ts
 * import { Chunked } from "@diesel/http"
 *
 * const decoder = new Chunked.Decoder()
 * const parts: Array<Uint8Array> = []
 * const used = decoder.decode(new TextEncoder().encode("3\r\nabc\r\n0\r\n\r\nNEXT"), (data) => parts.push(data))
 * // used === 15 (the bytes of the body), decoder.done === true, parts holds "abc"
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export class Decoder {
  private state = SIZE
  private remaining = 0
  private digits = 0
  private extension = 0
  private total = 0
  private trailerBytes: Array<Uint8Array> = []
  private trailerSize = 0
  private readonly maxBodySize: number
  private readonly maxTrailerSize: number
  private readonly maxExtensionSize: number
  /** The trailer fields (lower-case name, value, ...), once `done`. */
  trailers: ReadonlyArray<string> = []

  constructor(limits?: Limits) {
    this.maxBodySize = limits?.maxBodySize ?? Number.MAX_SAFE_INTEGER
    this.maxTrailerSize = limits?.maxTrailerSize ?? Http1.DEFAULT_MAX_HEAD_SIZE
    this.maxExtensionSize = limits?.maxExtensionSize ?? 1024
  }

  /** The last chunk and the trailers have been read. */
  get done(): boolean {
    return this.state === DONE
  }

  /** Data bytes decoded so far. */
  get bodySize(): number {
    return this.total
  }

  /**
   * Decode `bytes`: data goes to `onData` (views of `bytes`, valid as long as it is), and the result is
   * the number of bytes of `bytes` that belong to the body (all of them unless it ended inside), or the
   * error. After an error the decoder must not be used again.
   */
  decode(bytes: Uint8Array, onData: (data: Uint8Array) => void): number | HttpParseError {
    const length = bytes.byteLength
    let pos = 0
    while (pos < length) {
      const c = bytes[pos] ?? 0
      switch (this.state) {
        case SIZE:
        case SIZE_DIGITS: {
          const digit = HEX[c] ?? -1
          if (digit >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) return this.error("InvalidChunkSize", pos, "too many digits")
            this.remaining = this.remaining * 16 + digit
            this.state = SIZE_DIGITS
            pos++
            break
          }
          if (this.state === SIZE) return this.error("InvalidChunkSize", pos)
          if (c === CR) this.state = SIZE_LF
          else if (c === 0x3b) this.state = EXTENSION
          else return this.error("InvalidChunkSize", pos)
          pos++
          break
        }
        case EXTENSION: {
          if (c === CR) {
            this.state = SIZE_LF
          } else if (VALUE[c] !== 1 || ++this.extension > this.maxExtensionSize) {
            return this.error("InvalidChunkExtension", pos)
          }
          pos++
          break
        }
        case SIZE_LF: {
          if (c !== LF) return this.error("InvalidChunkSize", pos, "CR without LF")
          pos++
          this.digits = 0
          this.extension = 0
          if (this.remaining === 0) {
            this.state = TRAILER
            break
          }
          this.total += this.remaining
          if (this.total > this.maxBodySize) return this.error("BodyTooLarge", pos)
          this.state = DATA
          break
        }
        case DATA: {
          const take = Math.min(this.remaining, length - pos)
          onData(bytes.subarray(pos, pos + take))
          pos += take
          this.remaining -= take
          if (this.remaining === 0) this.state = DATA_CR
          break
        }
        case DATA_CR: {
          if (c !== CR) return this.error("InvalidChunkTerminator", pos)
          this.state = DATA_LF
          pos++
          break
        }
        case DATA_LF: {
          if (c !== LF) return this.error("InvalidChunkTerminator", pos)
          this.state = SIZE
          pos++
          break
        }
        case TRAILER: {
          // the trailer section is usually empty: "\r\n" right after the last chunk
          const end = this.scanTrailer(bytes, pos)
          if (end instanceof HttpParseError) return end
          if (end < 0) return length
          return end
        }
        default:
          return pos
      }
    }
    return pos
  }

  private scanTrailer(bytes: Uint8Array, pos: number): number | HttpParseError {
    const piece = bytes.subarray(pos)
    this.trailerBytes.push(piece)
    this.trailerSize += piece.byteLength
    const all = this.trailerBytes.length === 1 ? piece : Buffer.concat(this.trailerBytes)
    const consumedBefore = this.trailerSize - piece.byteLength
    let end: number
    if (all[0] === CR) {
      // an empty trailer section: CRLF, or one CR so far
      if (all.byteLength < 2) end = -1
      else if (all[1] === LF) end = 2
      else return this.error("InvalidChunkTerminator", pos)
    } else {
      const found = Http1.findHeadEnd(all)
      if (found instanceof HttpParseError) return this.error("InvalidChunkTerminator", pos)
      end = found
    }
    if (end < 0) {
      if (this.trailerSize > this.maxTrailerSize) return this.error("TrailersTooLarge", pos)
      if (this.trailerBytes.length > 1) this.trailerBytes = [all]
      return -1
    }
    if (end > this.maxTrailerSize) return this.error("TrailersTooLarge", pos)
    const trailers = Http1.parseTrailers(all.subarray(0, end))
    if (trailers instanceof HttpParseError) return trailers
    this.trailers = trailers
    this.trailerBytes = []
    this.state = DONE
    return pos + (end - consumedBefore)
  }

  private error(reason: HttpParseError["reason"], offset: number, detail?: string): HttpParseError {
    this.state = DONE
    return new HttpParseError(detail === undefined ? { reason, offset } : { reason, offset, detail })
  }
}

const CRLF = Buffer.from("\r\n")

/**
 * One chunk of a chunked body as a single buffer (size line, data, CRLF): one write per chunk. An empty
 * `data` gives an empty buffer (a zero-size chunk would end the body).
 *
 * @example
 * ```ts
 * import { Chunked } from "@diesel/http"
 *
 * Chunked.encode(new TextEncoder().encode("hello")) // "5\r\nhello\r\n"
 * ```
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (data: Uint8Array): Uint8Array => {
  const size = data.byteLength
  if (size === 0) return new Uint8Array(0)
  const head = size.toString(16)
  const out = Buffer.allocUnsafe(head.length + 4 + size)
  out.write(head, 0, "latin1")
  let at = head.length
  out[at++] = CR
  out[at++] = LF
  out.set(data, at)
  at += size
  CRLF.copy(out, at)
  return out
}

/**
 * The end of a chunked body: the last chunk and the trailer fields (`[name, value, ...]`).
 *
 * @example
 * ```ts
 * import { Chunked } from "@diesel/http"
 *
 * Chunked.end() // "0\r\n\r\n"
 * Chunked.end(["x-checksum", "abc"]) // "0\r\nx-checksum: abc\r\n\r\n"
 * ```
 *
 * @since 0.1.0
 * @category encoding
 */
export const end = (trailers?: ReadonlyArray<string>): Uint8Array => {
  if (trailers === undefined || trailers.length === 0) return LAST_CHUNK
  let text = "0\r\n"
  for (let i = 0; i + 1 < trailers.length; i += 2) text += `${trailers[i]}: ${trailers[i + 1]}\r\n`
  return Buffer.from(`${text}\r\n`, "latin1")
}

const LAST_CHUNK: Uint8Array = Buffer.from("0\r\n\r\n")
