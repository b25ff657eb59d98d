import { Resp } from "@diesel/clients/redis"
import { assert, describe, it } from "@effect/vitest"
import * as Schema from "effect/Schema"

/** A small deterministic PRNG (xorshift32) so a property's seed reproduces its input. */
const prng = (seed: number) => {
  let x = seed | 0 || 0x9e3779b9
  return (n: number): number => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % n
  }
}

const text = (rand: (n: number) => number): string => {
  const alphabet = ["a", "b", "Z", "0", " ", "\r", "\n", "é", "日", "$", "*", "-", "+", ":"]
  let s = ""
  const len = rand(12)
  for (let i = 0; i < len; i++) s += alphabet[rand(alphabet.length)]
  return s
}

const line = (rand: (n: number) => number): string => text(rand).replace(/[\r\n]/g, "_")

/** A random reply and its RESP3 wire form. */
const genReply = (rand: (n: number) => number, depth: number): { wire: string; value: Resp.RespValue } => {
  const kind = rand(depth > 3 ? 8 : 16)
  switch (kind) {
    case 0: {
      const s = line(rand)
      return { wire: `+${s}\r\n`, value: s }
    }
    case 1: {
      const n = rand(2) === 0 ? rand(1000) : -rand(1_000_000_000)
      return { wire: `:${n}\r\n`, value: n }
    }
    case 2: {
      const s = text(rand)
      return { wire: `$${Buffer.byteLength(s)}\r\n${s}\r\n`, value: s }
    }
    case 3:
      return { wire: "$-1\r\n", value: null }
    case 4:
      return { wire: "_\r\n", value: null }
    case 5: {
      const b = rand(2) === 0
      return { wire: `#${b ? "t" : "f"}\r\n`, value: b }
    }
    case 6: {
      const d = rand(100000) / 64
      return { wire: `,${d}\r\n`, value: d }
    }
    case 7: {
      const n = BigInt(rand(1_000_000)) * 10_000_000_000_000n
      return { wire: `(${n}\r\n`, value: n }
    }
    case 8:
    case 9: {
      const items = Array.from({ length: rand(4) }, () => genReply(rand, depth + 1))
      return { wire: `*${items.length}\r\n${items.map((i) => i.wire).join("")}`, value: items.map((i) => i.value) }
    }
    case 10: {
      const items = Array.from(
        { length: rand(3) },
        () => [genReply(rand, depth + 1), genReply(rand, depth + 1)] as const
      )
      return {
        wire: `%${items.length}\r\n${items.map(([k, v]) => k.wire + v.wire).join("")}`,
        value: new Resp.RespMap(items.map(([k, v]) => [k.value, v.value] as const))
      }
    }
    case 11: {
      const items = Array.from({ length: rand(3) }, () => genReply(rand, depth + 1))
      return {
        wire: `~${items.length}\r\n${items.map((i) => i.wire).join("")}`,
        value: new Resp.RespSet(items.map((i) => i.value))
      }
    }
    case 12: {
      // an attribute annotates the reply that follows it and is dropped
      const attribute = genReply(rand, depth + 1)
      const annotated = genReply(rand, depth + 1)
      return { wire: `|1\r\n+key\r\n${attribute.wire}${annotated.wire}`, value: annotated.value }
    }
    case 13: {
      const items = Array.from({ length: rand(3) }, () => genReply(rand, depth + 1))
      return {
        wire: `>${items.length}\r\n${items.map((i) => i.wire).join("")}`,
        value: new Resp.RespPush(items.map((i) => i.value))
      }
    }
    case 14: {
      const s = text(rand)
      return { wire: `=${Buffer.byteLength(s) + 4}\r\ntxt:${s}\r\n`, value: s }
    }
    default: {
      const s = line(rand)
      return { wire: `-ERR ${s}\r\n`, value: new Resp.RespError("ERR", s) }
    }
  }
}

/** Feed `bytes` split at the given points and collect every reply. */
const parseChunked = (bytes: Buffer, splits: ReadonlyArray<number>): Array<Resp.RespValue> => {
  const parser = new Resp.Parser()
  const points = [...new Set(splits.map((s) => Math.abs(s) % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Array<Resp.RespValue> = []
  let from = 0
  for (const to of [...points, bytes.length]) {
    parser.feed(bytes.subarray(from, to))
    from = to
    for (let v = parser.next(); v !== undefined; v = parser.next()) out.push(v)
  }
  return out
}

describe("Resp", () => {
  it("parses every RESP2 and RESP3 type", () => {
    const wire =
      "+OK\r\n-WRONGTYPE bad kind\r\n:42\r\n:-7\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n*2\r\n:1\r\n$1\r\nx\r\n" +
      "_\r\n#t\r\n,3.5\r\n,inf\r\n(12345678901234567890\r\n=8\r\ntxt:abcd\r\n%1\r\n+k\r\n:1\r\n~1\r\n+m\r\n>2\r\n+message\r\n+x\r\n" +
      "|1\r\n+ttl\r\n:3\r\n+annotated\r\n!9\r\nERR boom!\r\n:9007199254740993\r\n"
    const values = parseChunked(Buffer.from(wire), [])
    assert.deepStrictEqual(values, [
      "OK",
      new Resp.RespError("WRONGTYPE", "bad kind"),
      42,
      -7,
      "hello",
      "",
      null,
      null,
      [1, "x"],
      null,
      true,
      3.5,
      Infinity,
      12345678901234567890n,
      "abcd",
      new Resp.RespMap([["k", 1]]),
      new Resp.RespSet(["m"]),
      new Resp.RespPush(["message", "x"]),
      "annotated",
      new Resp.RespError("ERR", "boom!"),
      9007199254740993n
    ])
  })

  it("returns bulk strings as exact bytes in binary mode", () => {
    const payload = Buffer.from([0, 255, 13, 10, 36, 128])
    const parser = new Resp.Parser()
    parser.feed(Buffer.concat([Buffer.from("$6\r\n"), payload, Buffer.from("\r\n")]))
    const value = parser.next(true)
    assert.instanceOf(value, Uint8Array)
    assert.deepStrictEqual(Buffer.from(value as Uint8Array), payload)
  })

  it("encodes text and binary arguments", () => {
    assert.strictEqual(Resp.encode(["SET", "k", "é", 12]), "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\né\r\n$2\r\n12\r\n")
    const chunks = Resp.encode(["SET", new Uint8Array([0, 1]), "v"])
    assert.ok(Array.isArray(chunks))
    const bytes = Buffer.concat(
      (chunks as Array<string | Uint8Array>).map((c) => (typeof c === "string" ? Buffer.from(c) : c))
    )
    assert.deepStrictEqual(
      bytes,
      Buffer.concat([Buffer.from("*3\r\n$3\r\nSET\r\n$2\r\n"), Buffer.from([0, 1]), Buffer.from("\r\n$1\r\nv\r\n")])
    )
  })

  it("keeps a split bulk string waiting without re-parsing it chunk by chunk", () => {
    const parser = new Resp.Parser()
    const big = "x".repeat(100_000)
    const wire = Buffer.from(`$${big.length}\r\n${big}\r\n+after\r\n`)
    for (let i = 0; i < wire.length; i += 1000) {
      parser.feed(wire.subarray(i, Math.min(wire.length, i + 1000)))
      if (i + 1000 < big.length) assert.strictEqual(parser.next(), undefined)
    }
    assert.strictEqual(parser.next(), big)
    assert.strictEqual(parser.next(), "after")
  })

  it.prop(
    "any chunking of a reply stream parses the same",
    [Schema.Int, Schema.Array(Schema.Int)],
    ([seed, splits]) => {
      const rand = prng(seed)
      const replies = Array.from({ length: 1 + rand(8) }, () => genReply(rand, 0))
      const bytes = Buffer.from(replies.map((r) => r.wire).join(""))
      const whole = parseChunked(bytes, [])
      assert.deepStrictEqual(
        whole,
        replies.map((r) => r.value)
      )
      assert.deepStrictEqual(parseChunked(bytes, splits), whole)
      // one byte at a time
      assert.deepStrictEqual(
        parseChunked(
          bytes,
          Array.from({ length: bytes.length }, (_, i) => i)
        ),
        whole
      )
    },
    { arbitrary: { runs: 300 } }
  )

  /** An LRANGE-like reply: `count` bulk strings of varying length. */
  const bigArray = (count: number, rand: (n: number) => number) => {
    const items = Array.from({ length: count }, (_, i) => `item:${i}:${"v".repeat(rand(40))}`)
    const wire = Buffer.from(`*${count}\r\n${items.map((s) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`).join("")}`)
    return { items, wire }
  }

  it.prop(
    "any split of a large reply (20,000 elements) gives the same reply",
    [Schema.Int, Schema.Array(Schema.Int)],
    ([seed, splits]) => {
      const rand = prng(seed)
      const { items, wire } = bigArray(20_000, rand)
      const extra = Array.from({ length: 64 }, () => rand(wire.length + 1))
      assert.deepStrictEqual(parseChunked(wire, [...splits, ...extra]), [items])
    },
    { arbitrary: { runs: 30 } }
  )

  it("parses a large reply once: elements already parsed are not held as bytes", () => {
    // The old parser re-parsed a reply from its first byte on every chunk (quadratic in the reply's size):
    // it kept every byte of the unfinished reply. Now the parser keeps the elements it has parsed and at
    // most the bytes of the one element a chunk boundary cuts.
    const { items, wire } = bigArray(50_000, prng(7))
    const parser = new Resp.Parser()
    let maxBuffered = 0
    let reply: Resp.RespValue | undefined
    for (let i = 0; i < wire.length; i += 16 * 1024) {
      parser.feed(wire.subarray(i, i + 16 * 1024))
      reply = parser.next()
      maxBuffered = Math.max(maxBuffered, parser.buffered)
      if (i + 16 * 1024 < wire.length) assert.strictEqual(reply, undefined)
    }
    assert.deepStrictEqual(reply, items)
    assert.isBelow(maxBuffered, 100)
    assert.strictEqual(parser.buffered, 0)
  })

  it("keeps the binary mode a reply started with across chunks", () => {
    const parser = new Resp.Parser()
    parser.feed(Buffer.from("*2\r\n$2\r\nab\r\n$2\r"))
    assert.strictEqual(parser.next(true), undefined)
    parser.feed(Buffer.from("\ncd\r\n$1\r\nx\r\n"))
    assert.deepStrictEqual(parser.next(false), [new Uint8Array([97, 98]), new Uint8Array([99, 100])])
    assert.strictEqual(parser.next(false), "x")
  })

  it("reports error offsets from the start of the reply, across chunks", () => {
    const parser = new Resp.Parser()
    parser.feed(Buffer.from("+OK\r\n*2\r\n:1\r\n"))
    assert.strictEqual(parser.next(), "OK")
    assert.strictEqual(parser.next(), undefined)
    parser.feed(Buffer.from(":x\r\n"))
    try {
      parser.next()
      assert.fail("expected a RespProtocolError")
    } catch (error) {
      assert.instanceOf(error, Resp.RespProtocolError)
      assert.strictEqual(error.offset, 9)
    }
  })

  /** Feed bytes and pull replies until the parser wants more or rejects them. */
  const drive = (bytes: Uint8Array, limits?: Resp.ParserLimits): "ok" | "error" => {
    const parser = new Resp.Parser(limits)
    try {
      for (let i = 0; i < bytes.length; i += 7) {
        parser.feed(bytes.subarray(i, i + 7))
        let guard = 0
        while (parser.next() !== undefined) {
          if (++guard > bytes.length + 1) throw new Error("parser made no progress")
        }
      }
      return "ok"
    } catch (error) {
      if (error instanceof Resp.RespProtocolError) return "error"
      throw error
    }
  }

  it.prop(
    "random bytes give replies, a wait for more, or a RespProtocolError; never another throw",
    [Schema.Int, Schema.Int],
    ([seed, length]) => {
      const rand = prng(seed)
      const bytes = new Uint8Array(Math.abs(length) % 4096)
      for (let i = 0; i < bytes.length; i++) bytes[i] = rand(256)
      drive(bytes, { maxBulkLength: 1 << 20, maxAggregateLength: 1 << 16 })
    },
    { arbitrary: { runs: 500 } }
  )

  it.prop(
    "mutated valid streams never throw anything but RespProtocolError",
    [Schema.Int],
    ([seed]) => {
      const rand = prng(seed)
      const wire = Buffer.from(Array.from({ length: 4 }, () => genReply(rand, 0).wire).join(""))
      for (let m = 0; m < 1 + rand(4); m++) wire[rand(wire.length)] = rand(256)
      drive(wire)
    },
    { arbitrary: { runs: 500 } }
  )

  it("rejects hostile inputs with typed errors", () => {
    const deep = Buffer.from("*1\r\n".repeat(100_000))
    assert.strictEqual(drive(deep), "error")
    assert.strictEqual(drive(Buffer.from(`$${2 ** 40}\r\n`)), "error")
    assert.strictEqual(drive(Buffer.from("+".padEnd(70_000, "a"))), "error")
    assert.strictEqual(drive(Buffer.from(":12a\r\n")), "error")
    assert.strictEqual(drive(Buffer.from("?\r\n")), "error")
    assert.strictEqual(drive(Buffer.from("$3\r\nabcXY")), "error")
    assert.strictEqual(drive(Buffer.from("+OK\rX")), "error")
  })
})
