/**
 * RFC 6455 framing: the incremental frame parser and the frame encoder, with masking.
 *
 * The parser keeps the chunks it is given and cuts frames out of them without copying when a frame lies
 * inside one chunk (the common case); it never allocates per byte. Masked payloads are unmasked in place
 * (the chunks come from the socket and belong to the parser once pushed), four bytes at a time.
 *
 * @internal
 */
import { randomFillSync } from "node:crypto"

/** @internal */
export const OP_CONTINUATION = 0x0
/** @internal */
export const OP_TEXT = 0x1
/** @internal */
export const OP_BINARY = 0x2
/** @internal */
export const OP_CLOSE = 0x8
/** @internal */
export const OP_PING = 0x9
/** @internal */
export const OP_PONG = 0xa

/** A frame as read from the wire, payload unmasked. @internal */
export interface Frame {
  readonly fin: boolean
  readonly rsv1: boolean
  readonly opcode: number
  readonly payload: Uint8Array
}

/**
 * Why the peer's bytes are not acceptable: the close code to send (1002 protocol error, 1007 invalid
 * payload, 1009 too big) and what was wrong. @internal
 */
export class Violation {
  constructor(
    readonly code: number,
    readonly detail: string
  ) {}
}

const EMPTY = new Uint8Array(0)

// A word view of the four key bytes in the machine's byte order, so that XOR-ing a Uint32Array view of
// the payload with it is the same as XOR-ing byte by byte.
const keyBytes = new Uint8Array(4)
const keyWord = new Uint32Array(keyBytes.buffer)

/**
 * XOR `data` in place with the 4-byte mask `key` (read from `key[keyOffset..keyOffset+4)`), the mask
 * starting at key byte `phase`: the bytes up to a 4-byte boundary one by one, the aligned middle as
 * 32-bit words, the tail one by one.
 *
 * @internal
 */
export const maskInPlace = (data: Uint8Array, key: Uint8Array, keyOffset: number): void => {
  const length = data.byteLength
  const k0 = key[keyOffset] ?? 0
  const k1 = key[keyOffset + 1] ?? 0
  const k2 = key[keyOffset + 2] ?? 0
  const k3 = key[keyOffset + 3] ?? 0
  if (length < 16) {
    for (let i = 0; i < length; i++) {
      const k = (i & 3) === 0 ? k0 : (i & 3) === 1 ? k1 : (i & 3) === 2 ? k2 : k3
      data[i] = (data[i] ?? 0) ^ k
    }
    return
  }
  // bytes before the first 4-byte-aligned address
  const lead = (4 - (data.byteOffset & 3)) & 3
  for (let i = 0; i < lead; i++) {
    const k = i === 0 ? k0 : i === 1 ? k1 : k2
    data[i] = (data[i] ?? 0) ^ k
  }
  // the word at an aligned address starts at payload index `lead`: rotate the key by `lead`
  keyBytes[0] = lead === 0 ? k0 : lead === 1 ? k1 : lead === 2 ? k2 : k3
  keyBytes[1] = lead === 0 ? k1 : lead === 1 ? k2 : lead === 2 ? k3 : k0
  keyBytes[2] = lead === 0 ? k2 : lead === 1 ? k3 : lead === 2 ? k0 : k1
  keyBytes[3] = lead === 0 ? k3 : lead === 1 ? k0 : lead === 2 ? k1 : k2
  const word = keyWord[0] ?? 0
  const words = (length - lead) >>> 2
  const view = new Uint32Array(data.buffer, data.byteOffset + lead, words)
  for (let i = 0; i < words; i++) view[i] = (view[i] ?? 0) ^ word
  for (let i = lead + words * 4; i < length; i++) {
    const j = i & 3
    const k = j === 0 ? k0 : j === 1 ? k1 : j === 2 ? k2 : k3
    data[i] = (data[i] ?? 0) ^ k
  }
}

// Mask keys come from a pool refilled from the CSPRNG 2 KiB at a time (one syscall per 512 frames).
const keyPool = Buffer.allocUnsafe(2048)
let keyPoolOffset = keyPool.byteLength

const nextMaskKey = (into: Uint8Array, offset: number): void => {
  if (keyPoolOffset === keyPool.byteLength) {
    randomFillSync(keyPool)
    keyPoolOffset = 0
  }
  into[offset] = keyPool[keyPoolOffset] ?? 0
  into[offset + 1] = keyPool[keyPoolOffset + 1] ?? 0
  into[offset + 2] = keyPool[keyPoolOffset + 2] ?? 0
  into[offset + 3] = keyPool[keyPoolOffset + 3] ?? 0
  keyPoolOffset += 4
}

/** Size of a frame header for a payload of `length` bytes. @internal */
export const headerSize = (length: number, masked: boolean): number =>
  (length < 126 ? 2 : length < 65536 ? 4 : 10) + (masked ? 4 : 0)

/** Write a frame header at `offset` of `into`; returns the offset just past it (mask key included). @internal */
export const writeHeader = (
  into: Uint8Array,
  offset: number,
  opcode: number,
  fin: boolean,
  rsv1: boolean,
  length: number,
  masked: boolean
): number => {
  into[offset] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode
  const maskBit = masked ? 0x80 : 0
  let at = offset + 2
  if (length < 126) {
    into[offset + 1] = maskBit | length
  } else if (length < 65536) {
    into[offset + 1] = maskBit | 126
    into[offset + 2] = length >>> 8
    into[offset + 3] = length & 0xff
    at = offset + 4
  } else {
    into[offset + 1] = maskBit | 127
    const high = Math.floor(length / 0x1_0000_0000)
    into[offset + 2] = 0
    into[offset + 3] = 0
    into[offset + 4] = (high >>> 8) & 0xff
    into[offset + 5] = high & 0xff
    into[offset + 6] = (length >>> 24) & 0xff
    into[offset + 7] = (length >>> 16) & 0xff
    into[offset + 8] = (length >>> 8) & 0xff
    into[offset + 9] = length & 0xff
    at = offset + 10
  }
  if (masked) {
    nextMaskKey(into, at)
    at += 4
  }
  return at
}

/** Payloads up to this size are copied behind their header into one buffer (one chunk to write). */
const COPY_LIMIT = 1024

/**
 * Encode a frame: one buffer holding header and payload when the payload is small or must be masked
 * (a client's frames), otherwise the header and the payload itself (no copy). Text may be given as a
 * string with its UTF-8 length.
 *
 * @internal
 */
export const encode = (
  opcode: number,
  payload: Uint8Array | string,
  payloadLength: number,
  options: { readonly fin: boolean; readonly rsv1: boolean; readonly mask: boolean }
): Array<Uint8Array | string> => {
  const size = headerSize(payloadLength, options.mask)
  if (!options.mask && payloadLength > COPY_LIMIT) {
    const header = Buffer.allocUnsafe(size)
    writeHeader(header, 0, opcode, options.fin, options.rsv1, payloadLength, false)
    return [header, payload]
  }
  const out = Buffer.allocUnsafe(size + payloadLength)
  const at = writeHeader(out, 0, opcode, options.fin, options.rsv1, payloadLength, options.mask)
  if (typeof payload === "string") out.write(payload, at, "utf8")
  else out.set(payload, at)
  if (options.mask && payloadLength > 0) maskInPlace(out.subarray(at), out, at - 4)
  return [out]
}

/**
 * Incremental frame parser. `push` chunks as they arrive; `next` returns the next whole frame, or
 * `undefined` when more bytes are needed, or a `Violation`. Checks that do not need the payload (reserved
 * bits, opcodes, masking, control frame rules, the frame size limit) are made on the header, before the
 * payload is buffered.
 *
 * @internal
 */
export class FrameParser {
  private chunks: Array<Uint8Array> = []
  /** Offset of the first unread byte in `chunks[0]`. */
  private offset = 0
  private buffered = 0
  private failed: Violation | undefined = undefined

  constructor(
    /** `true` on a server: frames must be masked; `false` on a client: frames must not be. */
    private readonly expectMasked: boolean,
    /** Largest payload accepted in one frame. */
    private readonly maxFrameSize: number,
    /** RSV1 is allowed on the first frame of a data message (permessage-deflate negotiated). */
    private readonly allowRsv1: boolean
  ) {}

  /** Bytes held and not yet returned as frames. */
  get length(): number {
    return this.buffered
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return
    this.chunks.push(chunk)
    this.buffered += chunk.byteLength
  }

  private byteAt(index: number): number {
    let i = index + this.offset
    for (const chunk of this.chunks) {
      if (i < chunk.byteLength) return chunk[i] ?? 0
      i -= chunk.byteLength
    }
    return 0
  }

  /** Consume `n` bytes (n <= buffered): a view when they lie in one chunk, else a copy. */
  private take(n: number): Uint8Array {
    if (n === 0) return EMPTY
    this.buffered -= n
    const first = this.chunks[0]
    if (first !== undefined && first.byteLength - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n)
      this.offset += n
      if (this.offset === first.byteLength) {
        this.chunks.shift()
        this.offset = 0
      }
      return out
    }
    const out = new Uint8Array(n)
    let filled = 0
    while (filled < n) {
      const chunk = this.chunks[0]
      if (chunk === undefined) break
      const available = chunk.byteLength - this.offset
      const count = Math.min(available, n - filled)
      out.set(chunk.subarray(this.offset, this.offset + count), filled)
      filled += count
      if (count === available) {
        this.chunks.shift()
        this.offset = 0
      } else this.offset += count
    }
    return out
  }

  private fail(code: number, detail: string): Violation {
    this.failed = new Violation(code, detail)
    this.chunks = []
    this.buffered = 0
    return this.failed
  }

  next(): Frame | Violation | undefined {
    if (this.failed !== undefined) return this.failed
    if (this.buffered < 2) return undefined
    const b0 = this.byteAt(0)
    const b1 = this.byteAt(1)
    const fin = (b0 & 0x80) !== 0
    const rsv1 = (b0 & 0x40) !== 0
    const opcode = b0 & 0x0f
    const masked = (b1 & 0x80) !== 0
    let length = b1 & 0x7f
    if ((b0 & 0x30) !== 0) return this.fail(1002, "RSV2 and RSV3 must be clear")
    const control = opcode >= 0x8
    if (control) {
      if (opcode > OP_PONG) return this.fail(1002, `reserved opcode ${opcode}`)
      if (!fin) return this.fail(1002, "fragmented control frame")
      if (length > 125) return this.fail(1002, "control frame payload longer than 125 bytes")
      if (rsv1) return this.fail(1002, "RSV1 set on a control frame")
    } else {
      if (opcode > OP_BINARY) return this.fail(1002, `reserved opcode ${opcode}`)
      if (rsv1 && (!this.allowRsv1 || opcode === OP_CONTINUATION)) {
        return this.fail(1002, "RSV1 set without permessage-deflate, or on a continuation frame")
      }
    }
    if (masked !== this.expectMasked) {
      return this.fail(1002, this.expectMasked ? "unmasked frame from a client" : "masked frame from a server")
    }
    let headerLength = 2
    if (length === 126) {
      if (this.buffered < 4) return undefined
      length = (this.byteAt(2) << 8) | this.byteAt(3)
      headerLength = 4
    } else if (length === 127) {
      if (this.buffered < 10) return undefined
      if ((this.byteAt(2) & 0x80) !== 0) return this.fail(1002, "64-bit payload length with the high bit set")
      const high = ((this.byteAt(2) << 24) | (this.byteAt(3) << 16) | (this.byteAt(4) << 8) | this.byteAt(5)) >>> 0
      const low = ((this.byteAt(6) << 24) | (this.byteAt(7) << 16) | (this.byteAt(8) << 8) | this.byteAt(9)) >>> 0
      length = high * 0x1_0000_0000 + low
      headerLength = 10
    }
    if (length > this.maxFrameSize) {
      return this.fail(1009, `frame of ${length} bytes exceeds the limit of ${this.maxFrameSize}`)
    }
    const total = headerLength + (masked ? 4 : 0) + length
    if (this.buffered < total) return undefined
    const header = this.take(headerLength + (masked ? 4 : 0))
    const payload = this.take(length)
    if (masked && length > 0) maskInPlace(payload, header, headerLength)
    return { fin, rsv1, opcode, payload }
  }
}
