import { assert, describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { Message } from "../../src/dns/index.js"

const encodeOk = (message: Message.Message): Uint8Array => Result.getOrThrow(Message.encode(message))
const decodeOk = (bytes: Uint8Array): Message.Message => Result.getOrThrow(Message.decode(bytes))

const response = (records: ReadonlyArray<Message.ResourceRecord>): Message.Message => ({
  ...Message.query({ id: 0x1234, name: "www.example.test", type: "A", udpPayloadSize: 1232 }),
  qr: true,
  aa: true,
  answers: records,
  authorities: [
    {
      name: "example.test",
      type: Message.TypeCode.SOA,
      class: 1,
      ttl: 60,
      data: {
        _tag: "SOA",
        primary: "ns1.example.test",
        admin: "hostmaster.example.test",
        serial: 1,
        refresh: 2,
        retry: 3,
        expire: 4,
        minimum: 5
      }
    }
  ]
})

const rr = (name: string, data: Message.RData, ttl = 300): Message.ResourceRecord => ({
  name,
  type: Message.typeOf(data),
  class: 1,
  ttl,
  data
})

const everyType: ReadonlyArray<Message.ResourceRecord> = [
  rr("www.example.test", { _tag: "A", address: "10.0.0.1" }),
  rr("www.example.test", { _tag: "AAAA", address: "2001:db8::1" }),
  rr("alias.example.test", { _tag: "CNAME", target: "www.example.test" }),
  rr("example.test", { _tag: "NS", host: "ns1.example.test" }),
  rr("2.0.0.127.in-addr.arpa", { _tag: "PTR", host: "ns2.example.test" }),
  rr("example.test", { _tag: "MX", priority: 10, exchange: "mail1.example.test" }),
  rr("example.test", { _tag: "TXT", chunks: ["first", "second", "x".repeat(255)] }),
  rr("_sip._tcp.example.test", { _tag: "SRV", priority: 1, weight: 2, port: 5060, target: "sip1.example.test" }),
  rr("example.test", { _tag: "CAA", flags: 128, tag: "issue", value: "letsencrypt.org" }),
  rr("weird\\.label\\032x.example.test", { _tag: "Unknown", type: 99, data: Uint8Array.from([1, 2, 3]) })
]

describe("Message", () => {
  it("round-trips every record type, with EDNS and compression", () => {
    const message = response(everyType)
    const bytes = encodeOk(message)
    const decoded = decodeOk(bytes)
    expect(decoded).toEqual(message)
    // Compression: the owner "www.example.test" of the first answers points back to the question at 12.
    let pointers = 0
    for (let i = 0; i + 1 < bytes.length; i++) if (bytes[i] === 0xc0 && bytes[i + 1] === 12) pointers++
    assert.isAtLeast(pointers, 2)
  })

  it("encodes the query header and EDNS OPT", () => {
    const bytes = encodeOk(Message.query({ id: 0xabcd, name: "a.b", type: "AAAA", udpPayloadSize: 1232 }))
    expect([...bytes.subarray(0, 12)]).toEqual([0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1])
    expect([...bytes.subarray(12, 24)]).toEqual([1, 0x61, 1, 0x62, 0, 0, 28, 0, 1, 0, 0, 0x29])
    expect(decodeOk(bytes).edns?.udpPayloadSize).toBe(1232)
  })

  it("keeps the extended rcode from OPT", () => {
    const bytes = encodeOk({ ...Message.query({ id: 1, name: "a", type: "A", udpPayloadSize: 512 }), rcode: 16 })
    expect(decodeOk(bytes).rcode).toBe(16)
    assert.isTrue(Result.isFailure(Message.encode({ ...Message.query({ id: 1, name: "a", type: "A" }), rcode: 16 })))
  })

  it("rejects names that do not fit the wire format", () => {
    assert.isTrue(Result.isFailure(Message.nameToLabels("a..b")))
    assert.isTrue(Result.isFailure(Message.nameToLabels(`${"a".repeat(64)}.test`)))
    assert.isTrue(Result.isFailure(Message.nameToLabels(Array(130).fill("ab").join("."))))
    assert.isTrue(Result.isFailure(Message.nameToLabels("bad\\9")))
    expect(Message.nameToLabels("a\\.b.c.").pipe(Result.map((labels) => labels.length))).toEqual(Result.succeed(2))
  })

  describe("malformed packets give a typed error", () => {
    const valid = encodeOk(response(everyType))
    const reasonOf = (bytes: Uint8Array) => {
      const result = Message.decode(bytes)
      return Result.isFailure(result) ? result.failure.reason : "ok"
    }

    it("compression pointer loops", () => {
      // Header with one question whose name is a pointer to itself.
      const self = Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1])
      expect(reasonOf(self)).toBe("PointerLoop")
      // Two pointers pointing at each other.
      const pair = Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 0xc0, 12, 0, 1, 0, 1])
      expect(reasonOf(pair)).toBe("PointerLoop")
      // A label then a pointer back to it: the name grows until it is too long.
      const growing = Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 0xc0, 12, 0, 1, 0, 1])
      expect(["PointerLoop", "NameTooLong"]).toContain(reasonOf(growing))
    })

    it("pointers and lengths past the end", () => {
      expect(reasonOf(Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 200, 0, 1, 0, 1]))).toBe("BadPointer")
      expect(reasonOf(Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0x61]))).toBe("Truncated")
      expect(reasonOf(Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x80, 0]))).toBe("BadLabelType")
      // An answer claiming 1000 bytes of record data.
      const header = [0, 1, 0x81, 0, 0, 0, 0, 1, 0, 0, 0, 0]
      const answer = [0, 0, 1, 0, 1, 0, 0, 0, 60, 0x03, 0xe8, 10, 0, 0, 1]
      expect(reasonOf(Uint8Array.from([...header, ...answer]))).toBe("Truncated")
      // An A record of 3 bytes.
      const shortA = [0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 3, 10, 0, 0]
      expect(reasonOf(Uint8Array.from([...header, ...shortA]))).toBe("BadRecordData")
    })

    it("truncated records: every prefix of a valid message", () => {
      for (let length = 0; length < valid.length; length++) {
        const reason = reasonOf(valid.subarray(0, length))
        assert.notStrictEqual(reason, "ok", `prefix of ${length} bytes`)
      }
    })

    it("a TXT string running past its record", () => {
      const header = [0, 1, 0x81, 0, 0, 0, 0, 1, 0, 0, 0, 0]
      const txt = [0, 0, 16, 0, 1, 0, 0, 0, 60, 0, 3, 5, 0x61, 0x62, 0, 0, 0, 0]
      expect(reasonOf(Uint8Array.from([...header, ...txt]))).toBe("BadRecordData")
    })
  })

  // Fuzz: random bytes, and valid messages with random bytes changed, cut or extended.
  const Bytes = Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 })))
  const Edit = Schema.Struct({
    at: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2000 })),
    value: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }))
  })
  const base = encodeOk(response(everyType))

  const decodesOrFailsTyped = (bytes: Uint8Array): boolean => {
    const result = Message.decode(bytes)
    return Result.isSuccess(result) || result.failure._tag === "DnsDecodeError"
  }

  it.prop("fuzz: random bytes never throw", [Bytes], ([bytes]) => decodesOrFailsTyped(Uint8Array.from(bytes)), {
    arbitrary: { runs: 2000 }
  })

  it.prop(
    "fuzz: mutated valid messages never throw",
    [Schema.Array(Edit), Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2000 }))],
    ([edits, cut]) => {
      const bytes = Uint8Array.from(base)
      for (const edit of edits) bytes[edit.at % bytes.length] = edit.value
      return decodesOrFailsTyped(bytes.subarray(0, Math.min(bytes.length, cut + 12)))
    },
    { arbitrary: { runs: 3000 } }
  )

  it.prop(
    "fuzz: headers claiming many records on a short body never throw",
    [Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }))), Bytes],
    ([header, body]) => {
      const bytes = Uint8Array.from([
        ...header.slice(0, 12),
        ...Array(Math.max(0, 12 - header.length)).fill(0xff),
        ...body
      ])
      return decodesOrFailsTyped(bytes)
    },
    { arbitrary: { runs: 1000 } }
  )

  // Property: encode then decode gives the same message, for generated names and TXT strings.
  const Label = Schema.String.check(Schema.isPattern(/^[a-z0-9_-]{1,20}$/))
  it.prop(
    "property: decode(encode(m)) = m",
    [
      Schema.Array(Label).check(Schema.isMinLength(1)),
      Schema.Array(Schema.String.check(Schema.isMaxLength(80))),
      Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 0xffff }))
    ],
    ([labels, texts, id]) => {
      const name = labels.slice(0, 8).join(".")
      const chunks = texts.map((text) => text.replace(/[\ud800-\udfff]/g, "?"))
      const records = [
        rr(name, { _tag: "A", address: `10.0.${id >> 8}.${id & 0xff}` }),
        rr(name, { _tag: "CNAME", target: labels.slice(1).join(".") }),
        rr(name, { _tag: "TXT", chunks: chunks.length === 0 ? [""] : chunks }),
        rr(name, { _tag: "MX", priority: id, exchange: `mx.${name}` })
      ]
      const message: Message.Message = { ...response(records), id, questions: [{ name, type: 1, class: 1 }] }
      expect(decodeOk(encodeOk(message))).toEqual(message)
    },
    { arbitrary: { runs: 500 } }
  )
})

describe("encodeQuery", () => {
  const Label = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,63}$/))
  it.prop(
    "gives the bytes of encode(query(...))",
    [Schema.Array(Label).check(Schema.isMinLength(1), Schema.isMaxLength(4)), Schema.Boolean, Schema.Boolean],
    ([labels, edns, absolute]) => {
      const name = `${labels.join(".")}${absolute ? "." : ""}`
      const options = { name, type: 28, udpPayloadSize: edns ? 1232 : undefined }
      expect(Message.encodeQuery(options)).toEqual(Message.encode(Message.query({ id: 0, ...options })))
    },
    { arbitrary: { runs: 300 } }
  )

  it("falls back to the general encoder for escapes and rejects bad names", () => {
    const escaped = { name: "a\\.b.c", type: 1, udpPayloadSize: undefined }
    expect(Message.encodeQuery(escaped)).toEqual(Message.encode(Message.query({ id: 0, ...escaped })))
    assert.isTrue(Result.isFailure(Message.encodeQuery({ name: "a..b", type: 1 })))
  })
})
