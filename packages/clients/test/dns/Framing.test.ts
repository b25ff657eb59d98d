import { describe, expect, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import { frame, LengthPrefixed } from "../../src/dns/internal/framing.js"

const Byte = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }))
const Cut = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 5000 }))

describe("DNS over TCP framing", () => {
  it.prop(
    "any chunking of the stream gives the same messages",
    [Schema.Array(Schema.Array(Byte).check(Schema.isMaxLength(700))), Schema.Array(Cut)],
    ([messages, cuts]) => {
      const stream = Uint8Array.from(messages.flatMap((message) => [...frame(Uint8Array.from(message))]))
      const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b)
      const framer = new LengthPrefixed()
      const out: Array<Array<number>> = []
      let from = 0
      for (const point of [...points, stream.length]) {
        for (const message of framer.push(stream.subarray(from, point))) out.push([...message])
        from = point
      }
      expect(out).toEqual(messages.map((message) => [...message]))
      expect(framer.buffered).toBe(0)
    },
    { arbitrary: { runs: 300 } }
  )

  it("holds an incomplete message until the rest arrives", () => {
    const framer = new LengthPrefixed()
    expect(framer.push(Uint8Array.from([0, 3, 1]))).toEqual([])
    expect(framer.buffered).toBe(3)
    expect(framer.push(Uint8Array.from([2, 3, 0]))).toEqual([Uint8Array.from([1, 2, 3])])
    expect(framer.buffered).toBe(1)
  })
})
