import * as Dgram from "node:dgram"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Tracer from "effect/Tracer"
import { Authority, Message, Resolver, ResolverConfig } from "../../src/dns/index.js"
import * as Fake from "../harness/FakeDnsServer.js"

const withResolver = <A, E>(
  input: ResolverConfig.Input,
  body: (resolver: Resolver.ResolverService) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const resolver = yield* Resolver.make(ResolverConfig.make({ cache: false, ...input }))
    return yield* body(resolver)
  })

const tagOf = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.result(effect), (result) => (Result.isFailure(result) ? result.failure._tag : "success"))

/** A UDP port on 127.0.0.1 with nothing bound to it (bound, then closed). */
const closedPort = Effect.promise(
  () =>
    new Promise<number>((resolve) => {
      const socket = Dgram.createSocket("udp4")
      socket.bind(0, "127.0.0.1", () => {
        const port = socket.address().port
        socket.close(() => resolve(port))
      })
    })
)

const names = (server: Fake.FakeDnsServer) => server.queries.map((query) => query.message.questions[0]?.name)

describe("several name servers", () => {
  it.live("a silent server times out and the next one answers", () =>
    Effect.gen(function* () {
      const silent = yield* Fake.make(Fake.blackhole)
      const good = yield* Fake.make(Fake.authority())
      const answer = yield* withResolver(
        { nameservers: [silent.address, good.address], timeout: "150 millis", attempts: 1 },
        (resolver) => resolver.resolve("www.fake.test", "A")
      )
      expect(answer.records.map((r) => r.data.address)).toEqual(["10.9.0.1"])
      expect(answer.source).toBe(good.address)
      expect(silent.queries.length).toBe(1)
      expect(good.queries.length).toBe(1)
    })
  )

  it.live("an interrupted query is forgotten: its late answer is dropped, and the socket serves the next", () =>
    Effect.gen(function* () {
      // The answer to the slow query is held until the test releases it.
      const slowAsked = yield* Deferred.make<() => void>()
      const late: Fake.Handler = (query, raw, reply) => {
        const response = Authority.respond(Fake.fakeZone, raw, { transport: "udp" })
        if (response === undefined) return
        if (query.questions[0]?.name === "slow.wild.fake.test") {
          Deferred.doneUnsafe(
            slowAsked,
            Exit.succeed(() => reply.send(response))
          )
        } else reply.send(response)
      }
      const server = yield* Fake.make(late)
      yield* withResolver({ nameservers: [server.address], timeout: "2 seconds" }, (resolver) =>
        Effect.gen(function* () {
          const slow = yield* Effect.forkChild(resolver.resolve("slow.wild.fake.test", "A"))
          const release = yield* Deferred.await(slowAsked)
          yield* Fiber.interrupt(slow)
          release()
          // Same server, same socket: the late answer arrives before this one.
          const answer = yield* resolver.resolve("www.fake.test", "A")
          expect(answer.records.map((r) => r.data.address)).toEqual(["10.9.0.1"])
          expect(resolver.stats().rejected).toBe(1)
          expect(server.queries.map((query) => query.sourcePort)).toEqual(resolver.ports().concat(resolver.ports()))
        })
      )
    })
  )

  it.live("spans: off by default; with spans: true each resolve is a Resolver.resolve span", () =>
    Effect.gen(function* () {
      const server = yield* Fake.make(Fake.authority())
      const spans: Array<Tracer.Span> = []
      const tracer = Tracer.make({
        span: (options) => {
          const span = new Tracer.NativeSpan(options)
          spans.push(span)
          return span
        }
      })
      for (const traced of [false, true]) {
        yield* withResolver({ nameservers: [server.address], spans: traced }, (resolver) =>
          resolver.resolve("www.fake.test", "A")
        ).pipe(Effect.provideService(Tracer.Tracer, tracer))
      }
      expect(spans.map((span) => [span.name, span.attributes.get("name"), span.attributes.get("type")])).toEqual([
        ["Resolver.resolve", "www.fake.test", "A"]
      ])
    })
  )

  // Under TestClock no timeout can fire: the answers below come from the port being reported closed.
  it.effect("a server whose port is closed (ICMP port unreachable) is passed over at once, not at its timeout", () =>
    Effect.gen(function* () {
      const closed = yield* closedPort
      const good = yield* Fake.make(Fake.authority())
      const both = yield* Resolver.make(
        ResolverConfig.make({ nameservers: [`127.0.0.1:${closed}`, good.address], cache: false, attempts: 1 })
      )
      for (let i = 0; i < 3; i++) {
        const answer = yield* both.resolve("www.fake.test", "A")
        expect(answer.source).toBe(good.address)
      }
      const alone = yield* Resolver.make(ResolverConfig.make({ nameservers: [`127.0.0.1:${closed}`], cache: false }))
      const error = yield* Effect.flip(alone.resolve("www.fake.test", "A"))
      expect(error._tag).toBe("DnsTransportError")
      expect(error.message).toContain(`127.0.0.1:${closed}`)
    })
  )

  it.live("tries: every server, attempts times, then a typed timeout", () =>
    Effect.gen(function* () {
      const one = yield* Fake.make(Fake.blackhole)
      const two = yield* Fake.make(Fake.blackhole)
      const error = yield* withResolver(
        { nameservers: [one.address, two.address], timeout: "100 millis", attempts: 3 },
        (resolver) => Effect.flip(resolver.resolve("www.fake.test", "A"))
      )
      assert.strictEqual(error._tag, "ResolveTimeout")
      if (error._tag === "ResolveTimeout") {
        expect(error.attempts).toBe(3)
        expect(error.servers).toEqual([one.address, two.address])
      }
      expect(one.queries.length).toBe(3)
      expect(two.queries.length).toBe(3)
      // Each retry is a fresh query ID.
      expect(new Set(one.queries.map((q) => q.message.id)).size).toBe(3)
    })
  )

  it.live("rotate spreads queries over the servers; without it the first one gets them all", () =>
    Effect.gen(function* () {
      const one = yield* Fake.make(Fake.authority())
      const two = yield* Fake.make(Fake.authority())
      yield* withResolver({ nameservers: [one.address, two.address], rotate: true }, (resolver) =>
        Effect.repeat(resolver.resolve("www.fake.test", "A"), { times: 9 })
      )
      expect([one.queries.length, two.queries.length]).toEqual([5, 5])
      yield* withResolver({ nameservers: [one.address, two.address] }, (resolver) =>
        Effect.repeat(resolver.resolve("www.fake.test", "A"), { times: 3 })
      )
      expect([one.queries.length, two.queries.length]).toEqual([9, 5])
    })
  )

  it.live("SERVFAIL and REFUSED move on to the next server, and are reported when every server says so", () =>
    Effect.gen(function* () {
      const failing = yield* Fake.make(Fake.rcode(Message.Rcode.ServFail))
      const refusing = yield* Fake.make(Fake.rcode(Message.Rcode.Refused))
      const good = yield* Fake.make(Fake.authority())
      const answer = yield* withResolver(
        { nameservers: [failing.address, refusing.address, good.address], attempts: 1 },
        (resolver) => resolver.resolve("www.fake.test", "A")
      )
      expect(answer.source).toBe(good.address)
      expect(
        yield* withResolver({ nameservers: [failing.address], attempts: 1 }, (r) =>
          tagOf(r.resolve("www.fake.test", "A"))
        )
      ).toBe("ServerFailure")
      expect(
        yield* withResolver({ nameservers: [refusing.address], attempts: 1 }, (r) =>
          tagOf(r.resolve("www.fake.test", "A"))
        )
      ).toBe("Refused")
    })
  )

  it.live("a malformed answer is a typed error (after waiting for a genuine one)", () =>
    Effect.gen(function* () {
      const bad = yield* Fake.make(Fake.garbage)
      const error = yield* withResolver({ nameservers: [bad.address], attempts: 1, timeout: "100 millis" }, (r) =>
        Effect.flip(r.resolve("www.fake.test", "A"))
      )
      assert.strictEqual(error._tag, "MalformedAnswer")
      if (error._tag === "MalformedAnswer") expect(error.server).toBe(bad.address)
      const good = yield* Fake.make(Fake.authority())
      const answer = yield* withResolver(
        { nameservers: [bad.address, good.address], attempts: 1, timeout: "100 millis" },
        (r) => r.resolve("www.fake.test", "A")
      )
      expect(answer.source).toBe(good.address)
    })
  )
})

describe("search list and ndots", () => {
  const rootZone = Authority.zone("", [...Fake.fakeZone.byName.values()].flat())

  it.live("a short name is tried with the search domains first", () =>
    Effect.gen(function* () {
      const server = yield* Fake.make(Fake.authority(rootZone))
      const answer = yield* withResolver(
        { nameservers: [server.address], search: ["nowhere.test", "fake.test"], ndots: 1 },
        (r) => r.resolve("www", "A")
      )
      expect(answer.name).toBe("www.fake.test")
      expect(names(server)).toEqual(["www.nowhere.test", "www.fake.test"])
    })
  )

  it.live("names with ndots dots are tried as they are first; a trailing dot means absolute", () =>
    Effect.gen(function* () {
      const server = yield* Fake.make(Fake.authority(rootZone))
      yield* withResolver({ nameservers: [server.address], search: ["fake.test"], ndots: 1 }, (r) =>
        Effect.gen(function* () {
          expect(yield* tagOf(r.resolve("www.sub", "A"))).toBe("NxDomain")
          expect(names(server)).toEqual(["www.sub", "www.sub.fake.test"])
          server.queries.length = 0
          expect(yield* tagOf(r.resolve("www.sub.", "A"))).toBe("NxDomain")
          expect(names(server)).toEqual(["www.sub"])
        })
      )
      server.queries.length = 0
      yield* withResolver({ nameservers: [server.address], search: ["fake.test"], ndots: 2 }, (r) =>
        tagOf(r.resolve("www.sub", "A"))
      )
      expect(names(server)).toEqual(["www.sub.fake.test", "www.sub"])
    })
  )
})

describe("configuration files", () => {
  it("parses resolv.conf", () => {
    const input = ResolverConfig.parseResolvConf(`
# comment
nameserver 192.0.2.1
nameserver 2001:db8::53
nameserver not-an-address
search example.test corp.test ; trailing comment
options ndots:3 timeout:2 attempts:4 rotate edns0
`)
    const config = ResolverConfig.make(input)
    expect(config.nameservers).toEqual([
      { host: "192.0.2.1", port: 53, family: "ipv4" },
      { host: "2001:db8::53", port: 53, family: "ipv6" }
    ])
    expect(config.search).toEqual(["example.test", "corp.test"])
    expect(config.ndots).toBe(3)
    expect(Duration.toMillis(config.timeout)).toBe(2000)
    expect(config.attempts).toBe(4)
    assert.isTrue(config.rotate)
    // `domain` is a one-entry search list; the last of domain/search wins, as in glibc.
    expect(ResolverConfig.make(ResolverConfig.parseResolvConf("domain a.test\n")).search).toEqual(["a.test"])
    // No name server: localhost, as the C library does.
    expect(ResolverConfig.make({}).nameservers).toEqual([{ host: "127.0.0.1", port: 53, family: "ipv4" }])
  })

  it.live("reads /etc/resolv.conf and /etc/hosts (here: files given in their place)", () =>
    Effect.gen(function* () {
      const server = yield* Fake.make(Fake.authority())
      const directory = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "diesel-dns-conf-"))),
        (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
      )
      yield* Effect.promise(async () => {
        await writeFile(
          join(directory, "resolv.conf"),
          `nameserver ${server.address}\nsearch fake.test\noptions timeout:1\n`
        )
        await writeFile(join(directory, "hosts"), "10.7.7.7 pinned pinned.fake.test # from hosts\n::7 pinned\n")
      })
      const config = yield* ResolverConfig.system(
        { cache: false },
        { resolvConf: join(directory, "resolv.conf"), hosts: join(directory, "hosts") }
      )
      expect(config.nameservers).toEqual([{ host: "127.0.0.1", port: server.port, family: "ipv4" }])
      const resolver = yield* Resolver.make(config)
      expect(yield* resolver.lookup("pinned")).toEqual(["10.7.7.7", "::7"])
      expect(yield* resolver.lookup("PINNED.fake.test", { family: "IPv4" })).toEqual(["10.7.7.7"])
      expect(server.queries.length).toBe(0)
      // Not in hosts: DNS, through the search list.
      expect(yield* resolver.lookup("www", { family: "IPv4" })).toEqual(["10.9.0.1"])
      expect(names(server)).toEqual(["www.fake.test"])
    })
  )
})
