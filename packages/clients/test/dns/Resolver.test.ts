import { promises as NodeDns } from "node:dns"
import { assert, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import { Resolver } from "../../src/dns/index.js"
import * as KnotServer from "../harness/KnotServer.js"

/** The resolver under test (no cache: every call asks knot) and node's Resolver, both on the same knot. */
const ResolverOnKnot = Layer.unwrap(
  KnotServer.Knot.useSync((knot) => Resolver.layer({ nameservers: [knot.address], cache: false, timeout: "2 seconds" }))
)

const sortBy = <A>(values: ReadonlyArray<A>, key: (a: A) => string): Array<A> =>
  [...values].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))

const errorTag = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.result(effect), (result) => (Result.isFailure(result) ? result.failure._tag : "success"))

layer(Layer.provideMerge(ResolverOnKnot, KnotServer.layer), { timeout: "30 seconds", excludeTestServices: true })(
  "Resolver against knot",
  (it) => {
    /** The error code of node's Resolver (ENOTFOUND...), or "success". */
    const nodeCode = <A>(f: (resolver: NodeDns.Resolver) => Promise<A>) =>
      KnotServer.Knot.use((knot) =>
        Effect.promise(() => {
          const resolver = new NodeDns.Resolver({ timeout: 2000, tries: 1 })
          resolver.setServers([knot.address])
          return f(resolver).then(
            () => "success",
            (error: NodeJS.ErrnoException) => error.code ?? "unknown"
          )
        })
      )

    const node = <A>(f: (resolver: NodeDns.Resolver) => Promise<A>) =>
      KnotServer.Knot.use((knot) =>
        Effect.promise(() => {
          const resolver = new NodeDns.Resolver({ timeout: 2000, tries: 1 })
          resolver.setServers([knot.address])
          return f(resolver)
        })
      )

    it.effect("A and AAAA with TTLs, as node's Resolver", () =>
      Effect.gen(function* () {
        const ours = yield* Resolver.resolve("www.example.test", "A")
        const theirs = yield* node((r) => r.resolve4("www.example.test", { ttl: true }))
        expect(
          sortBy(
            ours.records.map((r) => ({ address: r.data.address, ttl: r.ttl })),
            (r) => r.address
          )
        ).toEqual(sortBy(theirs, (r) => r.address))
        expect(ours.ttl).toBe(120)
        expect(ours.source).toMatch(/^127\.0\.0\.1:\d+$/)
        const six = yield* Resolver.resolve("www.example.test", "AAAA")
        const theirs6 = yield* node((r) => r.resolve6("www.example.test", { ttl: true }))
        expect(six.records.map((r) => ({ address: r.data.address, ttl: r.ttl }))).toEqual(theirs6)
      })
    )

    it.effect("MX, NS, SOA, CAA as node's Resolver", () =>
      Effect.gen(function* () {
        const mx = yield* Resolver.resolve("example.test", "MX")
        const nodeMx = yield* node((r) => r.resolveMx("example.test"))
        expect(
          sortBy(
            mx.records.map((r) => ({ exchange: r.data.exchange, priority: r.data.priority })),
            (r) => r.exchange
          )
        ).toEqual(
          sortBy(
            nodeMx.map((r) => ({ exchange: r.exchange, priority: r.priority })),
            (r) => r.exchange
          )
        )
        const ns = yield* Resolver.resolve("example.test", "NS")
        expect(ns.records.map((r) => r.data.host).sort()).toEqual(
          (yield* node((r) => r.resolveNs("example.test"))).sort()
        )
        const soa = yield* Resolver.resolve("example.test", "SOA")
        const nodeSoa = yield* node((r) => r.resolveSoa("example.test"))
        const ourSoa = soa.records[0].data
        expect({
          nsname: ourSoa.primary,
          hostmaster: ourSoa.admin,
          serial: ourSoa.serial,
          refresh: ourSoa.refresh,
          retry: ourSoa.retry,
          expire: ourSoa.expire,
          minttl: ourSoa.minimum
        }).toEqual(nodeSoa)
        expect(soa.ttl).toBe(3600)
        const caa = yield* Resolver.resolve("example.test", "CAA")
        const nodeCaa = yield* node((r) => r.resolveCaa("example.test"))
        expect(
          sortBy(
            caa.records.map((r) => ({ critical: r.data.flags, [r.data.tag]: r.data.value })),
            (r) => JSON.stringify(r)
          )
        ).toEqual(
          sortBy(
            nodeCaa.map((r) => Object.fromEntries(Object.entries(r).filter(([key]) => key !== "type"))),
            (r) => JSON.stringify(r)
          )
        )
      })
    )

    it.effect("TXT: several RRsets, multi-string, over 255 bytes", () =>
      Effect.gen(function* () {
        const txt = yield* Resolver.resolve("example.test", "TXT")
        const nodeTxt = yield* node((r) => r.resolveTxt("example.test"))
        expect(
          sortBy(
            txt.records.map((r) => [...r.data.chunks]),
            (r) => r.join()
          )
        ).toEqual(sortBy(nodeTxt, (r) => r.join()))
        assert.deepStrictEqual(txt.records.find((r) => r.data.chunks.length === 3)?.data.chunks, [
          "first",
          "second",
          "third"
        ])
        const long = yield* Resolver.resolve("longtxt.example.test", "TXT")
        expect(long.records[0].data.chunks.map((chunk) => chunk.length)).toEqual([255, 45])
        expect(long.records[0].data.chunks.join("")).toBe(KnotServer.longText)
        expect(long.records.map((r) => [...r.data.chunks])).toEqual(
          yield* node((r) => r.resolveTxt("longtxt.example.test"))
        )
      })
    )

    it.effect("SRV and PTR as node's Resolver", () =>
      Effect.gen(function* () {
        const srv = yield* Resolver.resolve("_sip._tcp.example.test", "SRV")
        const nodeSrv = yield* node((r) => r.resolveSrv("_sip._tcp.example.test"))
        expect(
          sortBy(
            srv.records.map((r) => ({
              name: r.data.target,
              port: r.data.port,
              priority: r.data.priority,
              weight: r.data.weight
            })),
            (r) => r.name
          )
        ).toEqual(
          sortBy(
            nodeSrv.map((r) => ({ name: r.name, port: r.port, priority: r.priority, weight: r.weight })),
            (r) => r.name
          )
        )
        const ptr = yield* Resolver.resolve("2.0.0.127.in-addr.arpa", "PTR")
        expect(ptr.records.map((r) => r.data.host)).toEqual(yield* node((r) => r.resolvePtr("2.0.0.127.in-addr.arpa")))
        expect(yield* Resolver.reverse("127.0.0.2")).toEqual(["ns2.example.test"])
      })
    )

    it.effect("CNAME chains are followed, as node's Resolver does", () =>
      Effect.gen(function* () {
        const answer = yield* Resolver.resolve("alias3.example.test", "A")
        expect(answer.cnames).toEqual(["alias2.example.test", "alias1.example.test", "www.example.test"])
        expect(answer.canonicalName).toBe("www.example.test")
        expect(answer.records.map((r) => r.data.address).sort()).toEqual(
          (yield* node((r) => r.resolve4("alias3.example.test"))).sort()
        )
        const cname = yield* Resolver.resolve("alias.example.test", "CNAME")
        expect(cname.records.map((r) => r.data.target)).toEqual(
          yield* node((r) => r.resolveCname("alias.example.test"))
        )
      })
    )

    it.effect("CNAME loops are detected", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Resolver.resolve("loop1.example.test", "A"))
        assert.strictEqual(error._tag, "CnameLoop")
        if (error._tag === "CnameLoop")
          expect(error.chain).toEqual(["loop1.example.test", "loop2.example.test", "loop1.example.test"])
      })
    )

    it.effect("TCP fallback on truncation: 300 A records, 40 TXT of 200 bytes", () =>
      Effect.gen(function* () {
        const resolver = yield* Resolver.Resolver
        const before = resolver.stats().tcpQueries
        const big = yield* Resolver.resolve("big.example.test", "A")
        expect(big.records.length).toBe(KnotServer.bigCount)
        expect(big.records.map((r) => r.data.address).sort()).toEqual(
          (yield* node((r) => r.resolve4("big.example.test"))).sort()
        )
        const bigtxt = yield* Resolver.resolve("bigtxt.example.test", "TXT")
        expect(bigtxt.records.length).toBe(KnotServer.bigTxtCount)
        expect(resolver.stats().tcpQueries - before).toBe(2)
        const raw = yield* resolver.query("big.example.test", "A")
        assert.isTrue(raw.tcp)
      })
    )

    it.effect("EDNS0: a 700-byte answer fits one datagram only with the advertised payload size", () =>
      Effect.gen(function* () {
        const resolver = yield* Resolver.Resolver
        const withEdns = yield* resolver.query("medium.example.test", "A")
        assert.isFalse(withEdns.tcp)
        expect(withEdns.message.answers.length).toBe(KnotServer.mediumCount)
        expect(withEdns.message.edns?.udpPayloadSize).toBeGreaterThanOrEqual(512)
        const knot = yield* KnotServer.Knot
        const plain = yield* Effect.gen(function* () {
          const resolver = yield* Resolver.Resolver
          return yield* resolver.query("medium.example.test", "A")
        }).pipe(Effect.provide(Resolver.layer({ nameservers: [knot.address], ednsPayloadSize: null, cache: false })))
        assert.isTrue(plain.tcp)
        expect(plain.message.edns).toBeUndefined()
        expect(plain.message.answers.length).toBe(KnotServer.mediumCount)
      })
    )

    it.effect("typed errors: NXDOMAIN, NODATA, REFUSED, as node's error codes", () =>
      Effect.gen(function* () {
        expect(yield* errorTag(Resolver.resolve("nosuch.example.test", "A"))).toBe("NxDomain")
        expect(yield* nodeCode((r) => r.resolve4("nosuch.example.test"))).toBe("ENOTFOUND")
        expect(yield* errorTag(Resolver.resolve("www.example.test", "MX"))).toBe("NoData")
        expect(yield* nodeCode((r) => r.resolveMx("www.example.test"))).toBe("ENODATA")
        // knot is not authoritative for other zones and refuses.
        expect(yield* errorTag(Resolver.resolve("www.example.com", "A"))).toBe("Refused")
        expect(yield* nodeCode((r) => r.resolve4("www.example.com"))).toBe("EREFUSED")
        // A CNAME leaving the zone: the target is asked for and refused.
        expect(yield* errorTag(Resolver.resolve("outside.example.test", "A"))).toBe("Refused")
        expect(yield* errorTag(Resolver.resolve("bad..name", "A"))).toBe("BadName")
        expect(yield* errorTag(Resolver.resolve(`${"x".repeat(64)}.example.test`, "A"))).toBe("BadName")
      })
    )

    it.effect("an IPv6 name server (knot on ::1)", () =>
      Effect.gen(function* () {
        const knot = yield* KnotServer.Knot
        const answer = yield* Resolver.resolve("www.example.test", "AAAA").pipe(
          Effect.provide(Resolver.layer({ nameservers: [`[::1]:${knot.port}`], cache: false }))
        )
        expect(answer.records.map((r) => r.data.address)).toEqual(["2001:db8::1"])
        expect(answer.source).toBe(`[::1]:${knot.port}`)
        const big = yield* Resolver.resolve("big.example.test", "A").pipe(
          Effect.provide(Resolver.layer({ nameservers: [`[::1]:${knot.port}`], cache: false }))
        )
        expect(big.records.length).toBe(KnotServer.bigCount)
      })
    )

    it.effect("wildcards and case-insensitive names", () =>
      Effect.gen(function* () {
        const answer = yield* Resolver.resolve("Host-17.WILD.example.test", "A")
        expect(answer.records.map((r) => r.data.address)).toEqual(["10.1.0.1"])
        expect(answer.name).toBe("host-17.wild.example.test")
      })
    )

    it.effect("lookup: A then AAAA, one family, IP literals", () =>
      Effect.gen(function* () {
        expect(yield* Resolver.lookup("www.example.test")).toEqual(
          expect.arrayContaining(["10.0.0.1", "10.0.0.2", "2001:db8::1"])
        )
        expect(yield* Resolver.lookup("www.example.test", { family: "IPv6" })).toEqual(["2001:db8::1"])
        expect(yield* Resolver.lookup("mail1.example.test")).toEqual(["10.0.0.25"])
        expect(yield* Resolver.lookup("192.0.2.7")).toEqual(["192.0.2.7"])
        expect(yield* errorTag(Resolver.lookup("nosuch.example.test"))).toBe("NxDomain")
      })
    )
  }
)
