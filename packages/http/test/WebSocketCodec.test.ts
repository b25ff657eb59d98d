import * as zlib from "node:zlib"
import { assert, describe, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import * as Deflate from "../src/internal/deflate.js"
import * as Frame from "../src/internal/frame.js"
import * as Reader from "../src/internal/reader.js"

/** xorshift32, so a property's seed reproduces its input. */
const prng = (seed: number) => {
  let x = seed | 0 || 0x9e3779b9
  return (n: number) => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % n
  }
}

const bytesOf = (rand: (n: number) => number, length: number) => {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = rand(256)
  return out
}

/** Feed `wire` cut at `cuts`, collecting every frame. */
const parseSplit = (wire: Uint8Array, cuts: ReadonlyArray<number>, masked: boolean) => {
  const parser = new Frame.FrameParser(masked, 1 << 20, true)
  const points = [...new Set(cuts.map((cut) => Math.abs(cut) % (wire.length + 1)))].sort((a, b) => a - b)
  const out: Array<{ fin: boolean; rsv1: boolean; opcode: number; payload: Array<number> }> = []
  let from = 0
  // the parser unmasks in place: give it a copy so every split parses the same input
  const copy = Uint8Array.from(wire)
  for (const point of [...points, wire.length]) {
    parser.push(copy.subarray(from, point))
    from = point
    for (;;) {
      const frame = parser.next()
      if (frame === undefined) break
      if (frame instanceof Frame.Violation) throw new Error(frame.detail)
      out.push({ fin: frame.fin, rsv1: frame.rsv1, opcode: frame.opcode, payload: [...frame.payload] })
    }
  }
  assert.strictEqual(parser.length, 0)
  return out
}

const concat = (parts: ReadonlyArray<Uint8Array | string>) =>
  Buffer.concat(parts.map((part) => (typeof part === "string" ? Buffer.from(part) : part)))

const naiveMask = (data: Uint8Array, key: Uint8Array) => data.map((byte, i) => byte ^ (key[i & 3] ?? 0))

describe("WebSocket frame codec", () => {
  it.prop(
    "masking in place equals byte-by-byte XOR at every alignment and length",
    [Schema.Int],
    ([seed]) => {
      const rand = prng(seed)
      const backing = bytesOf(rand, 300)
      const offset = rand(8)
      const data = backing.subarray(offset, offset + rand(290))
      const key = bytesOf(rand, 4)
      const expected = naiveMask(data, key)
      Frame.maskInPlace(data, key, 0)
      assert.deepStrictEqual([...data], [...expected])
    },
    { arbitrary: { runs: 300 } }
  )

  it.prop(
    "any split of the bytes gives the same frames (masked and unmasked, all length encodings)",
    [Schema.Int, Schema.Array(Schema.Int), Schema.Boolean],
    ([seed, cuts, masked]) => {
      const rand = prng(seed)
      const frames = Array.from({ length: 1 + rand(6) }, () => {
        const kind = rand(3)
        const length = kind === 0 ? rand(126) : kind === 1 ? 126 + rand(2000) : 65536 + rand(3000)
        const opcode = [Frame.OP_TEXT, Frame.OP_BINARY, Frame.OP_CONTINUATION][rand(3)] ?? 1
        return {
          fin: rand(2) === 0,
          rsv1: opcode !== Frame.OP_CONTINUATION && rand(2) === 0,
          opcode,
          payload: bytesOf(rand, length)
        }
      })
      const wire = concat(
        frames.flatMap((f) =>
          Frame.encode(f.opcode, f.payload, f.payload.byteLength, { fin: f.fin, rsv1: f.rsv1, mask: masked })
        )
      )
      const expected = frames.map((f) => ({ ...f, payload: [...f.payload] }))
      assert.deepStrictEqual(parseSplit(wire, [], masked), expected)
      assert.deepStrictEqual(parseSplit(wire, cuts, masked), expected)
    },
    { arbitrary: { runs: 100 } }
  )

  it("one byte at a time gives the same frames", () => {
    const rand = prng(7)
    const payload = bytesOf(rand, 300)
    const wire = concat([
      ...Frame.encode(Frame.OP_BINARY, payload, 300, { fin: true, rsv1: false, mask: true }),
      ...Frame.encode(Frame.OP_PING, "hi", 2, { fin: true, rsv1: false, mask: true })
    ])
    const frames = parseSplit(
      wire,
      Array.from({ length: wire.length }, (_, i) => i),
      true
    )
    assert.deepStrictEqual(frames[0]?.payload, [...payload])
    assert.deepStrictEqual(frames[1], { fin: true, rsv1: false, opcode: Frame.OP_PING, payload: [104, 105] })
  })

  const violation = (
    bytes: ReadonlyArray<number>,
    options?: { masked?: boolean; maxFrame?: number; rsv1?: boolean }
  ) => {
    const parser = new Frame.FrameParser(options?.masked ?? false, options?.maxFrame ?? 1000, options?.rsv1 ?? false)
    parser.push(Uint8Array.from(bytes))
    const out = parser.next()
    return out instanceof Frame.Violation ? out.code : out === undefined ? "more" : "frame"
  }

  it("rejects reserved bits, reserved opcodes, bad control frames, wrong masking and oversize frames", () => {
    assert.strictEqual(violation([0x81, 0x00]), "frame")
    assert.strictEqual(violation([0xa1, 0x00]), 1002) // RSV2
    assert.strictEqual(violation([0x91, 0x00]), 1002) // RSV3
    assert.strictEqual(violation([0xc1, 0x00]), 1002) // RSV1 without deflate
    assert.strictEqual(violation([0xc1, 0x00], { rsv1: true }), "frame")
    assert.strictEqual(violation([0xc0, 0x00], { rsv1: true }), 1002) // RSV1 on a continuation
    assert.strictEqual(violation([0x83, 0x00]), 1002) // opcode 3
    assert.strictEqual(violation([0x8b, 0x00]), 1002) // opcode 11
    assert.strictEqual(violation([0x09, 0x00]), 1002) // fragmented ping
    assert.strictEqual(violation([0x89, 0x7e, 0x00, 0x7e]), 1002) // ping of 126 bytes
    assert.strictEqual(violation([0x81, 0x00], { masked: true }), 1002) // unmasked frame to a server
    assert.strictEqual(violation([0x81, 0x80, 1, 2, 3, 4]), 1002) // masked frame to a client
    assert.strictEqual(violation([0x82, 0x7e, 0x03, 0xe9]), 1009) // 1001 bytes > 1000, before the payload came
    assert.strictEqual(violation([0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]), 1002) // 64-bit length, high bit
    assert.strictEqual(violation([0x82, 0x7e, 0x00]), "more")
  })
})

const readerOf = (options?: Partial<Reader.ReaderOptions>) => {
  const controls: Array<[number, Array<number>]> = []
  const reader = new Reader.MessageReader({
    server: false,
    maxFrameSize: 1 << 20,
    maxMessageSize: 1 << 20,
    deflate: undefined,
    onControl: (opcode, payload) => controls.push([opcode, [...payload]]),
    ...options
  })
  return { reader, controls }
}

const frame = (opcode: number, payload: Uint8Array | string, fin = true, rsv1 = false) => {
  const bytes = typeof payload === "string" ? Buffer.from(payload) : payload
  return concat(Frame.encode(opcode, bytes, bytes.byteLength, { fin, rsv1, mask: false }))
}

const drain = (reader: Reader.MessageReader) => {
  const out: Array<Reader.Next> = []
  for (;;) {
    const next = reader.next()
    if (next === undefined) return out
    out.push(next)
    if (next instanceof Reader.Closed || next instanceof Frame.Violation) return out
  }
}

describe("WebSocket message reader", () => {
  it("reassembles fragments with control frames between them", () => {
    const { reader, controls } = readerOf()
    reader.push(frame(Frame.OP_TEXT, "hel", false))
    reader.push(frame(Frame.OP_PING, "p"))
    reader.push(frame(Frame.OP_CONTINUATION, "lo ", false))
    reader.push(frame(Frame.OP_PONG, "q"))
    reader.push(frame(Frame.OP_CONTINUATION, "world"))
    reader.push(frame(Frame.OP_BINARY, Uint8Array.from([1, 2]), false))
    reader.push(frame(Frame.OP_CONTINUATION, Uint8Array.from([3])))
    const out = drain(reader)
    assert.deepStrictEqual(out[0], "hello world")
    assert.deepStrictEqual([...(out[1] as Uint8Array)], [1, 2, 3])
    assert.deepStrictEqual(controls, [
      [Frame.OP_PING, [112]],
      [Frame.OP_PONG, [113]]
    ])
  })

  it("validates UTF-8 across fragments: a code point split between frames is fine, an invalid one fails with 1007", () => {
    const euro = Buffer.from("€") // e2 82 ac
    const { reader } = readerOf()
    reader.push(frame(Frame.OP_TEXT, euro.subarray(0, 1), false))
    reader.push(frame(Frame.OP_CONTINUATION, euro.subarray(1, 2), false))
    reader.push(frame(Frame.OP_CONTINUATION, euro.subarray(2)))
    assert.deepStrictEqual(drain(reader), ["€"])
    const bad = readerOf().reader
    bad.push(frame(Frame.OP_TEXT, Uint8Array.from([0x61, 0xff]), false))
    // fails on the first fragment, before the message is complete
    const failure = bad.next()
    assert.instanceOf(failure, Frame.Violation)
    assert.strictEqual((failure as Frame.Violation).code, 1007)
    const truncated = readerOf().reader
    truncated.push(frame(Frame.OP_TEXT, euro.subarray(0, 2), false))
    truncated.push(frame(Frame.OP_CONTINUATION, ""))
    assert.strictEqual((truncated.next() as Frame.Violation).code, 1007)
  })

  it("rejects bad fragmentation, bad close frames, and messages over the limit", () => {
    const code = (frames: ReadonlyArray<Uint8Array>, max = 1 << 20) => {
      const { reader } = readerOf({ maxMessageSize: max })
      for (const f of frames) reader.push(f)
      const out = drain(reader).at(-1)
      return out instanceof Frame.Violation ? out.code : out instanceof Reader.Closed ? [out.code, out.reason] : out
    }
    assert.strictEqual(code([frame(Frame.OP_CONTINUATION, "x")]), 1002)
    assert.strictEqual(code([frame(Frame.OP_TEXT, "x", false), frame(Frame.OP_TEXT, "y")]), 1002)
    assert.strictEqual(code([frame(Frame.OP_CLOSE, Uint8Array.from([3]))]), 1002)
    assert.strictEqual(code([frame(Frame.OP_CLOSE, Uint8Array.from([0x03, 0xed]))]), 1002) // 1005 may not be sent
    assert.strictEqual(code([frame(Frame.OP_CLOSE, Uint8Array.from([0x03, 0xe8, 0xff]))]), 1007)
    assert.deepStrictEqual(code([frame(Frame.OP_CLOSE, Uint8Array.from([0x0f, 0xa0, 0x68, 0x69]))]), [4000, "hi"])
    assert.deepStrictEqual(code([frame(Frame.OP_CLOSE, new Uint8Array(0))]), [1005, ""])
    assert.strictEqual(code([frame(Frame.OP_BINARY, new Uint8Array(11))], 10), 1009)
    assert.strictEqual(
      code([frame(Frame.OP_BINARY, new Uint8Array(6), false), frame(Frame.OP_CONTINUATION, new Uint8Array(6))], 10),
      1009
    )
  })

  it.prop(
    "any split of a stream of fragmented messages gives the same messages",
    [Schema.Int, Schema.Array(Schema.Int)],
    ([seed, cuts]) => {
      const rand = prng(seed)
      const messages: Array<string | Array<number>> = []
      const parts: Array<Uint8Array> = []
      for (let m = 0; m < 1 + rand(5); m++) {
        const text = rand(2) === 0
        const value = text
          ? Array.from({ length: rand(40) }, () => ["a", "é", "€", "𝄞", " "][rand(5)]).join("")
          : [...bytesOf(rand, rand(300))]
        messages.push(value)
        const bytes = typeof value === "string" ? Buffer.from(value) : Uint8Array.from(value)
        const pieces = 1 + rand(4)
        const size = Math.ceil(bytes.byteLength / pieces)
        for (let p = 0; p < pieces; p++) {
          if (rand(3) === 0) parts.push(frame(Frame.OP_PING, "x"))
          const slice = bytes.subarray(p * size, (p + 1) * size)
          parts.push(
            frame(p === 0 ? (text ? Frame.OP_TEXT : Frame.OP_BINARY) : Frame.OP_CONTINUATION, slice, p === pieces - 1)
          )
        }
      }
      const wire = concat(parts)
      const points = [...new Set(cuts.map((cut) => Math.abs(cut) % (wire.length + 1)))].sort((a, b) => a - b)
      const { reader } = readerOf()
      const out: Array<string | Array<number>> = []
      let from = 0
      for (const point of [...points, wire.length]) {
        reader.push(wire.subarray(from, point))
        from = point
        for (const next of drain(reader)) out.push(typeof next === "string" ? next : [...(next as Uint8Array)])
      }
      assert.deepStrictEqual(out, messages)
    },
    { arbitrary: { runs: 200 } }
  )
})

const params: Deflate.Params = { localNoContextTakeover: false, remoteNoContextTakeover: false, localMaxWindowBits: 15 }

describe("permessage-deflate", () => {
  it("negotiates context takeover and window bits as RFC 7692 describes", () => {
    const offer = Deflate.clientOffer({ clientNoContextTakeover: true, serverMaxWindowBits: 10 })
    assert.strictEqual(
      offer,
      "permessage-deflate; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits"
    )
    const accepted = Deflate.accept(offer, {})
    assert.strictEqual(accepted?.response, "permessage-deflate; client_no_context_takeover; server_max_window_bits=10")
    assert.deepStrictEqual(accepted?.params, {
      localNoContextTakeover: false,
      remoteNoContextTakeover: true,
      localMaxWindowBits: 10
    })
    const confirmed = Deflate.confirm(accepted?.response ?? "", {
      clientNoContextTakeover: true,
      serverMaxWindowBits: 10
    })
    assert.deepStrictEqual(confirmed, {
      localNoContextTakeover: true,
      remoteNoContextTakeover: false,
      localMaxWindowBits: 15
    })
    // a server configured to reset its own context says so; a second, unknown offer is passed over
    assert.strictEqual(
      Deflate.accept("x-webkit-deflate-frame, permessage-deflate; client_max_window_bits", {
        serverNoContextTakeover: true,
        clientMaxWindowBits: 12
      })?.response,
      "permessage-deflate; server_no_context_takeover; client_max_window_bits=12"
    )
    // unknown parameters, bad window bits: declined
    assert.strictEqual(Deflate.accept("permessage-deflate; foo", {}), undefined)
    assert.strictEqual(Deflate.accept("permessage-deflate; server_max_window_bits=16", {}), undefined)
    // a client refuses a response it did not ask for
    assert.isString(Deflate.confirm("permessage-deflate; bar", {}))
    assert.isString(Deflate.confirm("permessage-deflate", { serverNoContextTakeover: true }))
  })

  const roundTrip = (
    local: Deflate.PerMessageDeflate,
    remote: Deflate.PerMessageDeflate,
    data: Uint8Array,
    max = 1 << 20
  ) =>
    new Promise<Uint8Array | Deflate.InflateLimit | Error>((resolve) =>
      local.compress(data, (error, payload) => {
        if (error !== undefined) return resolve(error)
        remote.decompress(payload, max, resolve)
      })
    )

  it("round-trips messages with and without context takeover", async () => {
    for (const noTakeover of [false, true]) {
      const p = { localNoContextTakeover: noTakeover, remoteNoContextTakeover: noTakeover, localMaxWindowBits: 11 }
      const a = new Deflate.PerMessageDeflate(p, {})
      const b = new Deflate.PerMessageDeflate(p, {})
      for (const text of ["hello hello hello", "hello hello hello", "x".repeat(10_000)]) {
        const out = await roundTrip(a, b, Buffer.from(text))
        assert.strictEqual(Buffer.from(out as Uint8Array).toString(), text)
      }
      a.close()
      b.close()
    }
  })

  it("bounds the inflated size: a zip bomb is an InflateLimit", async () => {
    // 64 MiB of zeros compress to about 64 KiB
    const bomb = zlib.deflateRawSync(Buffer.alloc(64 * 1024 * 1024), { finishFlush: zlib.constants.Z_SYNC_FLUSH })
    const inflater = new Deflate.PerMessageDeflate(params, {})
    const result = await new Promise<Uint8Array | Deflate.InflateLimit | Error>((resolve) =>
      inflater.decompress(bomb.subarray(0, bomb.byteLength - 4), 1024 * 1024, resolve)
    )
    assert.instanceOf(result, Deflate.InflateLimit)
    inflater.close()
  })
})
