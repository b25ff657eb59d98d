/**
 * The receive side of a WebSocket: frames to whole messages.
 *
 * Reassembles fragmented messages (control frames may come between fragments and are handled as they
 * come), validates text as UTF-8 as it arrives (a streaming decoder, so an invalid fragment fails the
 * message before the rest is buffered), enforces the message size limit on the wire size and, with
 * permessage-deflate, on the inflated size, and decodes close frames.
 *
 * Decompression is asynchronous (zlib's thread pool): while a message inflates, `next` returns
 * `undefined` and `inflating` is true; `onInflated` is called when it is done and `next` returns it.
 *
 * @internal
 */
import * as Deflate from "./deflate.js"
import * as Frame from "./frame.js"

/** The peer's close frame. @internal */
export class Closed {
  constructor(
    readonly code: number,
    readonly reason: string
  ) {}
}

/** A message, a close, a violation, or nothing yet. @internal */
export type Next = string | Uint8Array | Closed | Frame.Violation | undefined

/** Close codes a peer may send (RFC 6455 7.4, and the IANA registry's 1012-1014). @internal */
export const isValidCloseCode = (code: number): boolean =>
  (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)

const decodeStrict = new TextDecoder("utf-8", { fatal: true })

/** @internal */
export interface ReaderOptions {
  readonly server: boolean
  readonly maxFrameSize: number
  readonly maxMessageSize: number
  readonly deflate: Deflate.PerMessageDeflate | undefined
  /** A ping or pong arrived (`opcode` is `OP_PING` or `OP_PONG`). */
  readonly onControl: (opcode: number, payload: Uint8Array) => void
}

/** @internal */
export class MessageReader {
  private readonly frames: Frame.FrameParser
  /** Opcode of the message being reassembled, or -1. */
  private opcode = -1
  private compressed = false
  private parts: Array<Uint8Array> = []
  private size = 0
  private textParts: Array<string> = []
  private streamDecoder: TextDecoder | undefined
  private failed: Frame.Violation | Closed | undefined
  private inflated: Next = undefined
  /** A message is being inflated. */
  inflating = false
  /** Called when an inflation ends. */
  onInflated: (() => void) | undefined

  constructor(private readonly options: ReaderOptions) {
    this.frames = new Frame.FrameParser(options.server, options.maxFrameSize, options.deflate !== undefined)
  }

  push(chunk: Uint8Array): void {
    this.frames.push(chunk)
  }

  /** Bytes received and not yet returned. */
  get buffered(): number {
    return this.frames.length + this.size
  }

  private fail(code: number, detail: string): Frame.Violation {
    const violation = new Frame.Violation(code, detail)
    this.failed = violation
    this.parts = []
    this.textParts = []
    return violation
  }

  next(): Next {
    if (this.inflated !== undefined) {
      const out = this.inflated
      this.inflated = undefined
      if (out instanceof Frame.Violation) this.failed = out
      return out
    }
    if (this.failed !== undefined) return this.failed
    if (this.inflating) return undefined
    for (;;) {
      const frame = this.frames.next()
      if (frame === undefined) return undefined
      if (frame instanceof Frame.Violation) {
        this.failed = frame
        return frame
      }
      const opcode = frame.opcode
      if (opcode >= Frame.OP_CLOSE) {
        if (opcode === Frame.OP_CLOSE) return this.close(frame.payload)
        this.options.onControl(opcode, frame.payload)
        continue
      }
      if (opcode === Frame.OP_CONTINUATION) {
        if (this.opcode < 0) return this.fail(1002, "continuation frame without a message to continue")
      } else {
        if (this.opcode >= 0) return this.fail(1002, "new data frame inside a fragmented message")
        // the common case: a whole, uncompressed message in one frame
        if (frame.fin && !frame.rsv1) {
          if (frame.payload.byteLength > this.options.maxMessageSize) return this.tooBig(frame.payload.byteLength)
          if (opcode === Frame.OP_BINARY) return frame.payload
          try {
            return decodeStrict.decode(frame.payload)
          } catch {
            return this.fail(1007, "text message is not valid UTF-8")
          }
        }
        this.opcode = opcode
        this.compressed = frame.rsv1
      }
      const size = this.size + frame.payload.byteLength
      if (size > this.options.maxMessageSize) return this.tooBig(size)
      this.size = size
      if (this.opcode === Frame.OP_TEXT && !this.compressed) {
        if (this.streamDecoder === undefined) this.streamDecoder = new TextDecoder("utf-8", { fatal: true })
        const decoder = this.streamDecoder
        try {
          this.textParts.push(decoder.decode(frame.payload, { stream: !frame.fin }))
        } catch {
          this.streamDecoder = undefined
          return this.fail(1007, "text message is not valid UTF-8")
        }
      } else {
        this.parts.push(frame.payload)
      }
      if (!frame.fin) continue
      return this.finish()
    }
  }

  private tooBig(size: number): Frame.Violation {
    return this.fail(1009, `message of ${size} bytes exceeds the limit of ${this.options.maxMessageSize}`)
  }

  private finish(): Next {
    const opcode = this.opcode
    const compressed = this.compressed
    const parts = this.parts
    const size = this.size
    const textParts = this.textParts
    this.opcode = -1
    this.compressed = false
    this.parts = []
    this.textParts = []
    this.size = 0
    if (opcode === Frame.OP_TEXT && !compressed)
      return textParts.length === 1 ? (textParts[0] ?? "") : textParts.join("")
    const whole = parts.length === 1 && parts[0] !== undefined ? parts[0] : Buffer.concat(parts, size)
    const deflate = this.options.deflate
    if (!compressed || deflate === undefined) return whole
    this.inflating = true
    deflate.decompress(whole, this.options.maxMessageSize, (result) => {
      this.inflating = false
      if (result instanceof Deflate.InflateLimit) {
        this.inflated = new Frame.Violation(
          1009,
          `message inflates past the limit of ${result.limit} bytes (compressed: ${size})`
        )
      } else if (result instanceof Error) {
        this.inflated = new Frame.Violation(1007, `invalid permessage-deflate data: ${result.message}`)
      } else if (opcode === Frame.OP_BINARY) {
        this.inflated = result
      } else {
        try {
          this.inflated = decodeStrict.decode(result)
        } catch {
          this.inflated = new Frame.Violation(1007, "text message is not valid UTF-8")
        }
      }
      this.onInflated?.()
    })
    return undefined
  }

  private close(payload: Uint8Array): Next {
    if (payload.byteLength === 0) {
      this.failed = new Closed(1005, "")
      return this.failed
    }
    if (payload.byteLength === 1) return this.fail(1002, "close frame with a 1-byte payload")
    const code = ((payload[0] ?? 0) << 8) | (payload[1] ?? 0)
    if (!isValidCloseCode(code)) return this.fail(1002, `invalid close code ${code}`)
    let reason: string
    try {
      reason = decodeStrict.decode(payload.subarray(2))
    } catch {
      return this.fail(1007, "close reason is not valid UTF-8")
    }
    this.failed = new Closed(code, reason)
    return this.failed
  }
}
