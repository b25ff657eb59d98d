/**
 * DNS over TCP frames each message with a two-byte length (RFC 1035 §4.2.2). `LengthPrefixed` reassembles
 * messages from chunks cut anywhere; it holds at most one incomplete message (< 64 KiB) plus one chunk.
 */
export class LengthPrefixed {
  private buffer: Uint8Array = new Uint8Array(0)

  /** Adds a chunk and returns the messages it completes, in order. */
  push(chunk: Uint8Array): Array<Uint8Array> {
    let data: Uint8Array
    if (this.buffer.length === 0) {
      data = chunk
    } else {
      data = new Uint8Array(this.buffer.length + chunk.length)
      data.set(this.buffer)
      data.set(chunk, this.buffer.length)
    }
    const out: Array<Uint8Array> = []
    let at = 0
    while (data.length - at >= 2) {
      const length = ((data[at] ?? 0) << 8) | (data[at + 1] ?? 0)
      if (data.length - at - 2 < length) break
      out.push(data.slice(at + 2, at + 2 + length))
      at += 2 + length
    }
    this.buffer = at === data.length ? new Uint8Array(0) : data.slice(at)
    return out
  }

  /** Bytes held for a message not complete yet. */
  get buffered(): number {
    return this.buffer.length
  }
}

/** `message` with its two-byte length in front. */
export const frame = (message: Uint8Array): Uint8Array => {
  const out = new Uint8Array(message.length + 2)
  out[0] = message.length >> 8
  out[1] = message.length & 0xff
  out.set(message, 2)
  return out
}
