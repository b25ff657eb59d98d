import { assert, describe, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import * as ByteBuffer from "../src/ByteBuffer.js"

/** The reference: a plain array of bytes. */
class Model {
  bytes: Array<number> = []
  append(chunk: Uint8Array) {
    this.bytes.push(...chunk)
  }
  takeExactly(n: number): Array<number> | undefined {
    return this.bytes.length < n ? undefined : this.bytes.splice(0, n)
  }
  takeUntil(sentinel: Uint8Array): Array<number> | undefined {
    const s = [...sentinel]
    for (let i = 0; i + s.length <= this.bytes.length; i++) {
      if (s.every((b, j) => this.bytes[i + j] === b)) return this.bytes.splice(0, i + s.length)
    }
    return undefined
  }
}

const Op = Schema.Union([
  Schema.Struct({ op: Schema.Literal("append"), chunk: Schema.Uint8Array }),
  Schema.Struct({ op: Schema.Literal("exactly"), n: Schema.Int }),
  Schema.Struct({ op: Schema.Literal("until"), sentinel: Schema.Uint8Array }),
  Schema.Struct({ op: Schema.Literal("any"), max: Schema.Int }),
  Schema.Struct({ op: Schema.Literal("all") })
])

describe("ByteBuffer against a model", () => {
  it.prop(
    "behaves as a byte queue with all-or-nothing takes",
    { ops: Schema.Array(Op).check(Schema.isMinLength(20)) },
    ({ ops }) => {
      const buffer = ByteBuffer.make()
      const model = new Model()
      for (const op of ops) {
        switch (op.op) {
          case "append": {
            // small alphabet so that sentinels match
            const chunk = op.chunk.map((b) => b % 4)
            buffer.append(chunk)
            model.append(chunk)
            break
          }
          case "exactly": {
            const n = Math.abs(op.n) % 40
            const got = buffer.takeExactly(n)
            const want = model.takeExactly(n)
            assert.deepStrictEqual(got === undefined ? undefined : [...got], want)
            break
          }
          case "until": {
            const sentinel = op.sentinel.subarray(0, 3).map((b) => b % 4)
            if (sentinel.byteLength === 0) break
            const got = buffer.takeUntil(sentinel)
            const want = model.takeUntil(sentinel)
            assert.deepStrictEqual(got === undefined ? undefined : [...got], want)
            break
          }
          case "any": {
            const max = (Math.abs(op.max) % 40) + 1
            const got = buffer.takeAny(max)
            if (model.bytes.length === 0) assert.isUndefined(got)
            else {
              // some bytes, at most max, from the front
              assert.isDefined(got)
              const n = got?.byteLength ?? 0
              assert.isTrue(n >= 1 && n <= max)
              assert.deepStrictEqual([...(got ?? [])], model.bytes.splice(0, n))
            }
            break
          }
          case "all":
            assert.deepStrictEqual([...buffer.takeAll()], model.bytes.splice(0))
            break
        }
        assert.strictEqual(buffer.length, model.bytes.length)
      }
    }
  )

  it("takeAny serves the buffered part without merging a newer chunk", () => {
    const buffer = ByteBuffer.make()
    buffer.append(Uint8Array.of(1, 2, 3))
    assert.deepStrictEqual([...(buffer.takeAny(2) ?? [])], [1, 2])
    buffer.append(Uint8Array.of(4, 5))
    assert.deepStrictEqual([...(buffer.takeAny(10) ?? [])], [3])
    assert.deepStrictEqual([...(buffer.takeAny(10) ?? [])], [4, 5])
    assert.isUndefined(buffer.takeAny(10))
  })

  it("returned arrays are not overwritten by later appends", () => {
    const buffer = ByteBuffer.make()
    buffer.append(Uint8Array.of(1, 2))
    buffer.append(Uint8Array.of(3, 4))
    const first = buffer.takeExactly(3)
    buffer.append(Uint8Array.of(9, 9, 9, 9))
    assert.deepStrictEqual([...(buffer.takeAll() ?? [])], [4, 9, 9, 9, 9])
    assert.deepStrictEqual([...(first ?? [])], [1, 2, 3])
  })
})
