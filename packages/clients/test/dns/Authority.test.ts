import { execFile } from "node:child_process"
import { assert, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { Authority, Message } from "../../src/dns/index.js"
import * as Fake from "../harness/FakeDnsServer.js"

const rr = (name: string, data: Message.RData, ttl = 300): Message.ResourceRecord => ({
  name,
  type: Message.typeOf(data),
  class: Message.ClassIN,
  ttl,
  data
})

const zone = Authority.zone("zone.test", [
  rr("www.zone.test", { _tag: "A", address: "10.0.0.1" }),
  rr("www.zone.test", { _tag: "A", address: "10.0.0.2" }),
  rr("alias.zone.test", { _tag: "CNAME", target: "www.zone.test" }),
  rr("dangling.zone.test", { _tag: "CNAME", target: "gone.zone.test" }),
  rr("loop1.zone.test", { _tag: "CNAME", target: "loop2.zone.test" }),
  rr("loop2.zone.test", { _tag: "CNAME", target: "loop1.zone.test" }),
  rr("*.wild.zone.test", { _tag: "TXT", chunks: ["wild"] }),
  rr("exists.wild.zone.test", { _tag: "A", address: "10.0.0.3" }),
  rr("a.b.c.zone.test", { _tag: "A", address: "10.0.0.4" }),
  ...Array.from({ length: 100 }, (_, i) => rr("many.zone.test", { _tag: "A", address: `10.1.0.${i}` }))
])

const ask = (name: string, type: Message.RecordType, options: { edns?: number; transport?: "udp" | "tcp" } = {}) => {
  const query = Result.getOrThrow(Message.encode(Message.query({ id: 4242, name, type, udpPayloadSize: options.edns })))
  const bytes = Authority.respond(zone, query, { transport: options.transport ?? "udp", maxUdpPayload: 4096 })
  if (bytes === undefined) throw new Error("no response")
  return Result.getOrThrow(Message.decode(bytes))
}

describe("Authority", () => {
  it("answers exact names, authoritative, echoing the ID and question", () => {
    const response = ask("WWW.zone.test", "A")
    expect(response.id).toBe(4242)
    assert.isTrue(response.qr && response.aa)
    expect(response.rcode).toBe(Message.Rcode.NoError)
    expect(response.questions[0]?.name).toBe("WWW.zone.test")
    expect(response.answers.map((r) => r.data)).toEqual([
      { _tag: "A", address: "10.0.0.1" },
      { _tag: "A", address: "10.0.0.2" }
    ])
  })

  it("follows CNAMEs inside the zone and stops at loops", () => {
    expect(ask("alias.zone.test", "A").answers.map((r) => r.data._tag)).toEqual(["CNAME", "A", "A"])
    expect(ask("alias.zone.test", "CNAME").answers.map((r) => r.data._tag)).toEqual(["CNAME"])
    const loop = ask("loop1.zone.test", "A")
    expect(loop.answers.map((r) => r.name)).toEqual(["loop1.zone.test", "loop2.zone.test"])
    const dangling = ask("dangling.zone.test", "A")
    expect(dangling.rcode).toBe(Message.Rcode.NXDomain)
    expect(dangling.answers.length).toBe(1)
  })

  it("NXDOMAIN and NODATA carry the SOA; empty non-terminals are NODATA", () => {
    const nx = ask("nosuch.zone.test", "A")
    expect(nx.rcode).toBe(Message.Rcode.NXDomain)
    expect(nx.authorities.map((r) => r.data._tag)).toEqual(["SOA"])
    const nodata = ask("www.zone.test", "MX")
    expect([nodata.rcode, nodata.answers.length, nodata.authorities[0]?.data._tag]).toEqual([0, 0, "SOA"])
    const ent = ask("b.c.zone.test", "A")
    expect([ent.rcode, ent.answers.length]).toEqual([0, 0])
  })

  it("wildcards answer for names that do not exist, not for those that do", () => {
    const wild = ask("anything.wild.zone.test", "TXT")
    expect(wild.answers.map((r) => [r.name, r.data])).toEqual([
      ["anything.wild.zone.test", { _tag: "TXT", chunks: ["wild"] }]
    ])
    expect(ask("exists.wild.zone.test", "TXT").answers).toEqual([])
  })

  it("refuses names outside the zone; FORMERR for garbage; nothing for responses", () => {
    expect(ask("www.other.test", "A").rcode).toBe(Message.Rcode.Refused)
    const garbage = Authority.respond(zone, Uint8Array.from([1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12]), {
      transport: "udp"
    })
    expect(garbage === undefined ? undefined : [garbage[0], garbage[1], (garbage[3] ?? 0) & 0xf]).toEqual([1, 2, 1])
    const response = Result.getOrThrow(
      Message.encode({ ...Message.query({ id: 1, name: "www.zone.test", type: "A" }), qr: true })
    )
    expect(Authority.respond(zone, response, { transport: "udp" })).toBeUndefined()
    expect(Authority.respond(zone, Uint8Array.from([1, 2, 3]), { transport: "udp" })).toBeUndefined()
  })

  it("truncates over UDP beyond the client's EDNS size, never over TCP", () => {
    const plain = ask("many.zone.test", "A")
    assert.isTrue(plain.tc)
    expect(plain.answers.length).toBe(0)
    const edns = ask("many.zone.test", "A", { edns: 4096 })
    assert.isFalse(edns.tc)
    expect(edns.answers.length).toBe(100)
    expect(edns.edns?.udpPayloadSize).toBe(1232)
    // The server's own limit applies too.
    const capped = Authority.respond(
      zone,
      Result.getOrThrow(
        Message.encode(Message.query({ id: 1, name: "many.zone.test", type: "A", udpPayloadSize: 4096 }))
      ),
      { transport: "udp", maxUdpPayload: 1232 }
    )
    assert.isTrue(capped !== undefined && Result.getOrThrow(Message.decode(capped)).tc)
    expect(ask("many.zone.test", "A", { transport: "tcp" }).answers.length).toBe(100)
  })

  it.live("kdig can query a server built on it", () =>
    Effect.gen(function* () {
      const server = yield* Fake.make(Fake.authority(zone))
      const output = yield* Effect.callback<string>((resume) => {
        execFile(
          "kdig",
          ["@127.0.0.1", "-p", String(server.port), "+short", "+timeout=2", "+retry=0", "alias.zone.test", "A"],
          (error, stdout) => resume(error ? Effect.die(error) : Effect.succeed(stdout))
        )
      })
      expect(output.trim().split("\n")).toEqual(["www.zone.test.", "10.0.0.1", "10.0.0.2"])
    })
  )
})
