import { assert, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { Authority, Message, Resolver, ResolverConfig } from "../../src/dns/index.js"
import * as Fake from "../harness/FakeDnsServer.js"

const forgedAddress = "6.6.6.6"

/** A response to `query` whose A record points to the attacker. */
const forged = (query: Message.Message, changes: Partial<Message.Message> = {}): Uint8Array => {
  const question = query.questions[0]
  const response: Message.Message = {
    ...query,
    qr: true,
    aa: true,
    edns: undefined,
    answers:
      question === undefined
        ? []
        : [
            {
              name: question.name,
              type: Message.TypeCode.A,
              class: Message.ClassIN,
              ttl: 3600,
              data: { _tag: "A", address: forgedAddress }
            }
          ],
    ...changes
  }
  return Result.getOrThrow(Message.encode(response))
}

/**
 * Before the genuine answer, the "attacker" sends forged answers: from another port, with another ID, for
 * another question, not flagged as a response, and cut short.
 */
const spoofing: Fake.Handler = (query, raw, reply) => {
  reply.sendFromElsewhere(forged(query))
  reply.send(forged(query, { id: query.id ^ 0x5555 }))
  reply.send(
    forged(query, { questions: [{ name: "other.fake.test", type: Message.TypeCode.A, class: Message.ClassIN }] })
  )
  reply.send(
    forged(query, {
      questions: [{ name: query.questions[0]?.name ?? "", type: Message.TypeCode.MX, class: Message.ClassIN }]
    })
  )
  reply.send(forged(query, { qr: false }))
  reply.send(forged(query).subarray(0, 20))
  const genuine = Authority.respond(Fake.fakeZone, raw, { transport: "udp" })
  if (genuine !== undefined) reply.send(genuine)
}

describe("spoofing resistance", () => {
  it.live("forged answers are dropped; the genuine one is accepted", () =>
    Effect.gen(function* () {
      const server = yield* Fake.make(spoofing)
      const resolver = yield* Resolver.make(
        ResolverConfig.make({ nameservers: [server.address], timeout: "2 seconds" })
      )
      for (const name of ["www.fake.test", "a.wild.fake.test", "b.wild.fake.test"]) {
        const answer = yield* resolver.resolve(name, "A")
        expect(answer.records.map((r) => r.data.address)).not.toContain(forgedAddress)
      }
      const stats = resolver.stats()
      // Per query: 4 rejected (other ID, two other questions, not a response); 1 undecodable. The answer from
      // another port never reaches the resolver: its sockets are connected to the server, so the kernel drops it.
      expect(stats.rejected).toBe(12)
      expect(stats.malformed).toBe(3)
    })
  )

  it.live("query IDs are random", () =>
    Effect.gen(function* () {
      const server = yield* Fake.make(Fake.authority())
      const resolver = yield* Resolver.make(ResolverConfig.make({ nameservers: [server.address], cache: false }))
      yield* Effect.repeat(resolver.resolve("www.fake.test", "A"), { times: 63 })
      const ids = server.queries.map((q) => q.message.id)
      expect(ids.length).toBe(64)
      // 64 draws from 65536: a collision or two at most, and no counter.
      assert.isAtLeast(new Set(ids).size, 62)
      const steps = new Set(ids.slice(1).map((id, i) => (id - (ids[i] ?? 0) + 65536) % 65536))
      assert.isAtLeast(steps.size, 60)
    })
  )

  it.live("source ports are random, spread over a pool, and rotated", () =>
    Effect.gen(function* () {
      const server = yield* Fake.make(Fake.authority())
      const resolver = yield* Resolver.make(
        ResolverConfig.make({ nameservers: [server.address], cache: false, udpSockets: 4, queriesPerSocket: 8 })
      )
      const initial = resolver.ports()
      expect(initial.length).toBe(4)
      expect(new Set(initial).size).toBe(4)
      yield* Effect.repeat(resolver.resolve("www.fake.test", "A"), { times: 63 })
      const ports = new Set(server.queries.map((q) => q.sourcePort))
      // 64 queries, 8 per socket: at least 8 sockets used, each on its own port.
      assert.isAtLeast(ports.size, 8)
      assert.isAtLeast(resolver.stats().socketsOpened, 8)
      // Not consecutive ports (the kernel's or a counter's pattern).
      const sorted = [...ports].sort((a, b) => a - b)
      const consecutive = sorted.slice(1).filter((port, i) => port - (sorted[i] ?? 0) === 1).length
      assert.isBelow(consecutive, sorted.length / 2)
    })
  )
})
