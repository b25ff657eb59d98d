import { ClusterSlot, RedisClient, RedisCommand } from "@diesel/clients/redis"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { layer as clusterLayer, RedisClusterServer } from "../harness/RedisClusterServer.js"

const bytes = (s: string) => new TextEncoder().encode(s)

/** Deterministic keys: ASCII, hash tags, non-ASCII text, raw bytes. */
const sampleKeys = (n: number): Array<string | Uint8Array> => {
  let x = 0x2545f491
  const next = (m: number) => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % m
  }
  const text = () =>
    Array.from({ length: next(12) }, () =>
      String.fromCodePoint(next(4) === 0 ? 0x80 + next(0x2000) : 0x20 + next(95))
    ).join("")
  return Array.from({ length: n }, (_, i) => {
    switch (i % 4) {
      case 0:
        return text()
      case 1:
        return `${text()}{${text()}}${text()}`
      case 2:
        return Uint8Array.from({ length: next(24) }, () => next(256))
      default:
        return `user:${next(100000)}`
    }
  })
}

describe("ClusterSlot", () => {
  it("CRC16 XMODEM test vectors", () => {
    assert.strictEqual(ClusterSlot.crc16(bytes("123456789")), 0x31c3)
    assert.strictEqual(ClusterSlot.crc16(bytes("")), 0)
    assert.strictEqual(ClusterSlot.crc16(bytes("A")), 0x58e5)
  })

  it("hash tags: the first {...} that is not empty", () => {
    assert.strictEqual(ClusterSlot.keySlot("foo"), 12182)
    assert.strictEqual(ClusterSlot.keySlot("{user1000}.following"), ClusterSlot.keySlot("user1000"))
    assert.strictEqual(ClusterSlot.keySlot("foo{}{bar}"), ClusterSlot.crc16(bytes("foo{}{bar}")) & 16383)
    assert.strictEqual(ClusterSlot.keySlot("foo{{bar}}zap"), ClusterSlot.keySlot("{bar"))
    assert.strictEqual(ClusterSlot.keySlot("foo{bar}{zap}"), ClusterSlot.keySlot("bar"))
  })

  it("a string and its UTF-8 bytes have the same slot", () => {
    for (const key of sampleKeys(2000)) {
      if (typeof key === "string") assert.strictEqual(ClusterSlot.keySlot(key), ClusterSlot.keySlot(bytes(key)))
    }
  })
})

layer(clusterLayer, { timeout: 60_000, excludeTestServices: true })("ClusterSlot against a real cluster", (it) => {
  it.effect("slots agree with CLUSTER KEYSLOT", () =>
    Effect.gen(function* () {
      const cluster = yield* RedisClusterServer
      const seed = cluster.seeds[0]
      if (seed === undefined) return assert.fail("no seed")
      const redis = yield* RedisClient.make({ port: seed.port })
      const keys = sampleKeys(2000)
      const slots = yield* redis.pipeline(
        keys.map((key) => RedisCommand.make(["CLUSTER", "KEYSLOT", key], RedisCommand.integer))
      )
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]
        if (key !== undefined) assert.strictEqual(ClusterSlot.keySlot(key), slots[i], `key ${String(key)}`)
      }
    })
  )
})
