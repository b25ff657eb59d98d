import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { ByteBuffer } from "../src/index.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const CRLF = encoder.encode("\r\n")
/** What a string becomes after a UTF-8 round trip (lone surrogates turn into U+FFFD). */
const wellFormed = (text: string): string => decoder.decode(encoder.encode(text))

/** Split `bytes` at the given cut points (folded into range). */
const chunk = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((cut) => Math.abs(cut) % (bytes.byteLength + 1)))].sort((a, b) => a - b)
  const out: Array<Uint8Array> = []
  let from = 0
  for (const point of [...points, bytes.byteLength]) {
    if (point > from) out.push(bytes.subarray(from, point))
    from = point
  }
  return out
}

/** Feed chunks one by one, taking lines as soon as they are complete. */
const linesOf = (chunks: ReadonlyArray<Uint8Array>): Array<string> => {
  const buffer = ByteBuffer.make()
  const lines: Array<string> = []
  for (const piece of chunks) {
    buffer.append(piece)
    for (let line = buffer.takeUntil(CRLF); line !== undefined; line = buffer.takeUntil(CRLF)) {
      lines.push(decoder.decode(line))
    }
  }
  expect(buffer.length).toBe(0)
  return lines
}

describe("ByteBuffer", () => {
  it("takeUntil returns the bytes up to and including the sentinel", () => {
    const buffer = ByteBuffer.make()
    buffer.append(encoder.encode("GET / HTTP/1.0\r\nHost: x\r\n\r\nbody"))
    expect(decoder.decode(buffer.takeUntil(encoder.encode("\r\n\r\n")))).toBe("GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    expect(buffer.takeUntil(CRLF)).toBeUndefined()
    expect(decoder.decode(buffer.takeAll())).toBe("body")
  })

  it("a take that cannot be satisfied consumes nothing", () => {
    const buffer = ByteBuffer.make()
    buffer.append(encoder.encode("abc"))
    expect(buffer.takeExactly(4)).toBeUndefined()
    expect(buffer.takeUntil(CRLF)).toBeUndefined()
    expect(buffer.length).toBe(3)
    buffer.append(encoder.encode("d\r"))
    buffer.append(encoder.encode("\n"))
    expect(decoder.decode(buffer.takeUntil(CRLF))).toBe("abcd\r\n")
  })

  it("finds a sentinel split across chunks", () => {
    const buffer = ByteBuffer.make()
    buffer.append(encoder.encode("one\r"))
    expect(buffer.takeUntil(CRLF)).toBeUndefined()
    buffer.append(encoder.encode("\ntwo"))
    expect(decoder.decode(buffer.takeUntil(CRLF))).toBe("one\r\n")
    expect(decoder.decode(buffer.takeExactly(3))).toBe("two")
  })

  it("takeAny returns at most max bytes", () => {
    const buffer = ByteBuffer.make()
    expect(buffer.takeAny(10)).toBeUndefined()
    buffer.append(encoder.encode("0123456789"))
    expect(decoder.decode(buffer.takeAny(4))).toBe("0123")
    expect(decoder.decode(buffer.takeAny(100))).toBe("456789")
  })

  it("returned bytes are not overwritten by later appends", () => {
    const buffer = ByteBuffer.make()
    buffer.append(encoder.encode("ab"))
    buffer.append(encoder.encode("cd"))
    const first = buffer.takeExactly(3)
    buffer.append(encoder.encode("XXXXXXXX"))
    buffer.takeAll()
    buffer.append(encoder.encode("YYYY"))
    expect(decoder.decode(first)).toBe("abc")
  })

  it.prop(
    "any chunking of a stream of lines yields the same lines",
    { lines: Schema.Array(Schema.String), cuts: Schema.Array(Schema.Int) },
    ({ lines, cuts }) => {
      const expected = lines.map((line) => `${wellFormed(line).replace(/[\r\n]/g, "")}\r\n`)
      const bytes = encoder.encode(expected.join(""))
      expect(linesOf(chunk(bytes, cuts))).toEqual(expected)
      expect(linesOf([bytes])).toEqual(expected)
    }
  )

  it.prop(
    "any chunking gives the same length-prefixed frames",
    { frames: Schema.Array(Schema.String), cuts: Schema.Array(Schema.Int) },
    ({ frames, cuts }) => {
      const parts: Array<number> = []
      for (const frame of frames) {
        const body = encoder.encode(frame)
        parts.push(body.byteLength >> 8, body.byteLength & 0xff, ...body)
      }
      const bytes = Uint8Array.from(parts)
      const buffer = ByteBuffer.make()
      const out: Array<string> = []
      let size: number | undefined
      for (const piece of chunk(bytes, cuts)) {
        buffer.append(piece)
        while (true) {
          if (size === undefined) {
            const header = buffer.takeExactly(2)
            if (header === undefined) break
            size = ((header[0] ?? 0) << 8) | (header[1] ?? 0)
          }
          const body = buffer.takeExactly(size)
          if (body === undefined) break
          out.push(decoder.decode(body))
          size = undefined
        }
      }
      expect(out).toEqual(frames.map(wellFormed))
    }
  )
})
