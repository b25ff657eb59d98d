import { assert, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"
import { Resolver, ResolverCache, ResolverConfig } from "../../src/dns/index.js"
import * as Fake from "../harness/FakeDnsServer.js"

// Real sockets, TestClock: time only moves when the test says so, so TTLs expire on command.
const setup = (input: ResolverConfig.Input = {}) =>
  Effect.gen(function* () {
    const server = yield* Fake.make(Fake.authority())
    const resolver = yield* Resolver.make(ResolverConfig.make({ nameservers: [server.address], ...input }))
    return { server, resolver }
  })

describe("ResolverCache", () => {
  it("expires entries after their TTL and evicts the least recently used", () => {
    const cache = ResolverCache.make<string>({ maxEntries: 2 })
    cache.set("a", "A", 10, 0)
    cache.set("b", "B", 10, 0)
    expect(cache.get("a", 4_000)).toEqual({ value: "A", age: 4 })
    cache.set("c", "C", 10, 0) // evicts b: a was used more recently
    expect(cache.get("b", 0)).toBeUndefined()
    expect(cache.get("a", 9_999)?.value).toBe("A")
    expect(cache.get("a", 10_000)).toBeUndefined()
    cache.set("zero", "Z", 0, 0)
    expect(cache.get("zero", 0)).toBeUndefined()
    expect(cache.size()).toBe(1)
  })
})

describe("Resolver cache", () => {
  it.effect("honours TTLs: answers from the cache with the remaining TTL, then asks again", () =>
    Effect.gen(function* () {
      const { server, resolver } = yield* setup()
      const first = yield* resolver.resolve("www.fake.test", "A")
      expect(first.ttl).toBe(120)
      yield* TestClock.adjust("30 seconds")
      const cached = yield* resolver.resolve("WWW.fake.test.", "A")
      expect(cached.source).toBe("cache")
      expect(cached.ttl).toBe(90)
      expect(cached.records[0].ttl).toBe(90)
      expect(server.queries.length).toBe(1)
      yield* TestClock.adjust("90 seconds")
      const fresh = yield* resolver.resolve("www.fake.test", "A")
      expect(fresh.source).toBe(server.address)
      expect(server.queries.length).toBe(2)
      // TTL 0 is never cached.
      yield* resolver.resolve("ttl0.fake.test", "A")
      yield* resolver.resolve("ttl0.fake.test", "A")
      expect(server.queries.length).toBe(4)
    })
  )

  it.effect("caches negative answers for min(SOA TTL, SOA minimum) (RFC 2308)", () =>
    Effect.gen(function* () {
      const { server, resolver } = yield* setup()
      const nx = yield* Effect.flip(resolver.resolve("nosuch.fake.test", "A"))
      assert.strictEqual(nx._tag, "NxDomain")
      const again = yield* Effect.flip(resolver.resolve("nosuch.fake.test", "A"))
      assert.strictEqual(again._tag, "NxDomain")
      const nodata = yield* Effect.flip(resolver.resolve("www.fake.test", "AAAA"))
      assert.strictEqual(nodata._tag, "NoData")
      yield* Effect.flip(resolver.resolve("www.fake.test", "AAAA"))
      expect(server.queries.length).toBe(2)
      // The zone's SOA has TTL 600 and minimum 60: cached for 60 seconds.
      yield* TestClock.adjust("59 seconds")
      yield* Effect.flip(resolver.resolve("nosuch.fake.test", "A"))
      expect(server.queries.length).toBe(2)
      yield* TestClock.adjust("1 second")
      yield* Effect.flip(resolver.resolve("nosuch.fake.test", "A"))
      expect(server.queries.length).toBe(3)
    })
  )

  it.effect("coalesces concurrent queries for the same name into one", () =>
    Effect.gen(function* () {
      const { server, resolver } = yield* setup()
      const answers = yield* Effect.all(
        Array.from({ length: 20 }, () => resolver.resolve("www.fake.test", "A")),
        { concurrency: "unbounded" }
      )
      expect(new Set(answers.map((a) => a.records[0].data.address))).toEqual(new Set(["10.9.0.1"]))
      expect(server.queries.length).toBe(1)
      expect(resolver.stats().coalesced).toBe(19)
      // Different types are different queries.
      yield* Effect.all(
        [resolver.resolve("www.fake.test", "A"), Effect.flip(resolver.resolve("www.fake.test", "MX"))],
        {
          concurrency: 2
        }
      )
      expect(server.queries.length).toBe(2)
    })
  )

  it.live("a caller giving up does not fail the others waiting for the same query", () =>
    Effect.gen(function* () {
      const silent = yield* Fake.make(Fake.blackhole)
      const good = yield* Fake.make(Fake.authority())
      const resolver = yield* Resolver.make(
        ResolverConfig.make({ nameservers: [silent.address, good.address], timeout: "100 millis", attempts: 1 })
      )
      const first = yield* Effect.forkChild(resolver.resolve("www.fake.test", "A"), { startImmediately: true })
      const second = yield* Effect.forkChild(resolver.resolve("www.fake.test", "A"), { startImmediately: true })
      yield* Fiber.interrupt(first)
      const answer = yield* Fiber.join(second)
      expect(answer.records[0].data.address).toBe("10.9.0.1")
    })
  )

  it.effect("the cache is bounded", () =>
    Effect.gen(function* () {
      const { server, resolver } = yield* setup({ cache: { maxEntries: 5 } })
      for (let i = 0; i < 12; i++) yield* resolver.resolve(`host${i}.wild.fake.test`, "A")
      expect(resolver.stats().cacheSize).toBe(5)
      yield* resolver.resolve("host11.wild.fake.test", "A")
      expect(server.queries.length).toBe(12)
      yield* resolver.resolve("host0.wild.fake.test", "A") // evicted long ago
      expect(server.queries.length).toBe(13)
    })
  )

  it.effect("cache: false asks every time and does not coalesce", () =>
    Effect.gen(function* () {
      const { server, resolver } = yield* setup({ cache: false })
      yield* Effect.all([resolver.resolve("www.fake.test", "A"), resolver.resolve("www.fake.test", "A")], {
        concurrency: 2
      })
      yield* resolver.resolve("www.fake.test", "A")
      expect(server.queries.length).toBe(3)
    })
  )
})
