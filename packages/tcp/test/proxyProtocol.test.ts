import * as Net from "node:net"
import { assert, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as ProxyProtocol from "../src/ProxyProtocol.js"
import * as HAProxy from "./harness/HAProxy.js"

const enc = (text: string) => new TextEncoder().encode(text)
const Byte = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }))
const Port = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))

const header = (decoded: ProxyProtocol.Decoded | ProxyProtocol.ProxyProtocolError) => {
  if (decoded._tag !== "Header") throw new Error(`expected a header, got ${decoded._tag}`)
  return decoded
}
const reason = (decoded: ProxyProtocol.Decoded | ProxyProtocol.ProxyProtocolError) => {
  if (decoded._tag !== "ProxyProtocolError") throw new Error(`expected an error, got ${decoded._tag}`)
  return decoded.reason
}

describe("PROXY protocol v1", () => {
  it("decodes TCP4 and leaves the application bytes", () => {
    const bytes = enc("PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\nGET / HTTP/1.1\r\n")
    const decoded = header(ProxyProtocol.decode(bytes))
    assert.strictEqual(decoded.consumed, 45)
    assert.deepStrictEqual(decoded.header, {
      version: 1,
      command: "proxy",
      family: "IPv4",
      transport: "stream",
      source: { host: "192.0.2.1", port: 56324 },
      destination: { host: "198.51.100.7", port: 443 },
      tlvs: []
    })
  })

  it("decodes TCP6 in canonical form, UNKNOWN as local, the longest header", () => {
    const six = header(ProxyProtocol.decode(enc("PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::ffff:10.0.0.1 1 65535\r\n")))
    assert.strictEqual(six.header.command, "proxy")
    if (six.header.command === "proxy") {
      assert.strictEqual(six.header.source.host, "2001:db8::1")
      assert.strictEqual(six.header.destination.host, "::ffff:a00:1")
    }
    const unknown = header(ProxyProtocol.decode(enc("PROXY UNKNOWN ffff:f...f:ffff 1 2 3\r\n")))
    assert.strictEqual(unknown.header.command, "local")
    const longest = `PROXY TCP6 ${"ffff:".repeat(7)}ffff ${"ffff:".repeat(7)}ffff 65535 65535\r\n`
    assert.strictEqual(longest.length, ProxyProtocol.V1_MAX_BYTES - 3)
    assert.strictEqual(header(ProxyProtocol.decode(enc(longest))).consumed, longest.length)
  })

  it("is incomplete on every strict prefix", () => {
    const line = enc("PROXY TCP4 10.1.2.3 10.4.5.6 1000 2000\r\n")
    for (let i = 0; i < line.length; i++)
      assert.strictEqual(ProxyProtocol.decode(line.subarray(0, i))._tag, "Incomplete")
    assert.strictEqual(ProxyProtocol.decode(line)._tag, "Header")
  })

  it("refuses what is not a header at the first byte that shows it", () => {
    assert.strictEqual(reason(ProxyProtocol.decode(enc("GET / HTTP/1.1\r\n"))), "missing")
    assert.strictEqual(ProxyProtocol.decode(enc("PRO"))._tag, "Incomplete")
    assert.strictEqual(reason(ProxyProtocol.decode(enc("PRX"))), "missing")
  })

  it("refuses malformed lines", () => {
    const cases: Array<[string, string]> = [
      ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "malformed"], // bare LF
      ["PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "malformed"],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "malformed"],
      ["PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "malformed"],
      ["PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "malformed"],
      ["PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "malformed"],
      ["PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "malformed"],
      ["PROXY TCP6 1::2::3 ::1 1 2\r\n", "malformed"],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "malformed"],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", "malformed"],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "malformed"],
      ["PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "malformed"],
      ["PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n", "malformed"],
      ["PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "unsupported"],
      [`PROXY TCP4 ${"1".repeat(120)}`, "tooLong"]
    ]
    for (const [line, expected] of cases) assert.strictEqual(reason(ProxyProtocol.decode(enc(line))), expected, line)
    assert.strictEqual(
      reason(ProxyProtocol.decode(Uint8Array.of(0x50, 0x52, 0x4f, 0x58, 0x59, 0x20, 0x00))),
      "malformed"
    )
  })
})

describe("PROXY protocol v2", () => {
  const v4: ProxyProtocol.Header = {
    version: 2,
    command: "proxy",
    family: "IPv4",
    transport: "stream",
    source: { host: "203.0.113.9", port: 40000 },
    destination: { host: "127.0.0.1", port: 8443 },
    tlvs: [
      { type: ProxyProtocol.TLV.ALPN, value: enc("h2") },
      { type: ProxyProtocol.TLV.AUTHORITY, value: enc("api.example.test") }
    ]
  }

  it("round-trips IPv4 with TLVs, IPv6, unix, datagram and LOCAL", () => {
    const six: ProxyProtocol.Header = {
      ...v4,
      family: "IPv6",
      transport: "datagram",
      source: { host: "2001:db8::7", port: 1 },
      destination: { host: "::1", port: 2 },
      tlvs: []
    }
    const unix: ProxyProtocol.Header = {
      ...v4,
      family: "unix",
      source: { host: "/run/a.sock", port: 0 },
      destination: { host: "/run/b.sock", port: 0 }
    }
    const local: ProxyProtocol.Header = { version: 2, command: "local", tlvs: [] }
    for (const h of [v4, six, unix, local]) {
      const bytes = ProxyProtocol.encodeV2(h)
      const decoded = header(ProxyProtocol.decode(bytes))
      assert.strictEqual(decoded.consumed, bytes.length)
      assert.deepStrictEqual(decoded.header, h)
    }
    assert.strictEqual(ProxyProtocol.tlvText(v4, ProxyProtocol.TLV.AUTHORITY), "api.example.test")
    assert.strictEqual(ProxyProtocol.tlvText(v4, ProxyProtocol.TLV.UNIQUE_ID), undefined)
  })

  it("PROXY with AF_UNSPEC means the connection's own addresses", () => {
    const bytes = ProxyProtocol.encodeV2({ version: 2, command: "local", tlvs: [] })
    bytes[12] = 0x21 // PROXY, family still 0
    assert.strictEqual(header(ProxyProtocol.decode(bytes)).header.command, "local")
  })

  it("is incomplete on every strict prefix, and leaves what follows", () => {
    const bytes = ProxyProtocol.encodeV2(v4)
    for (let i = 0; i < bytes.length; i++)
      assert.strictEqual(ProxyProtocol.decode(bytes.subarray(0, i))._tag, "Incomplete")
    const followed = new Uint8Array(bytes.length + 3)
    followed.set(bytes)
    followed.set(enc("abc"), bytes.length)
    assert.strictEqual(header(ProxyProtocol.decode(followed)).consumed, bytes.length)
  })

  it("refuses bad versions, commands, families, lengths and TLVs", () => {
    const base = () => ProxyProtocol.encodeV2(v4)
    const mutate = (f: (b: Uint8Array) => void) => {
      const b = base()
      f(b)
      return reason(ProxyProtocol.decode(b))
    }
    assert.strictEqual(
      mutate((b) => (b[12] = 0x11)),
      "unsupported"
    )
    assert.strictEqual(
      mutate((b) => (b[12] = 0x22)),
      "unsupported"
    )
    assert.strictEqual(
      mutate((b) => (b[13] = 0x41)),
      "unsupported"
    )
    assert.strictEqual(
      mutate((b) => (b[13] = 0x13)),
      "unsupported"
    )
    assert.strictEqual(
      mutate((b) => (b[5] = 0x0e)),
      "missing"
    )
    // declared length too short for the addresses
    const short = ProxyProtocol.encodeV2({ version: 2, command: "local", tlvs: [] })
    short[12] = 0x21
    short[13] = 0x11
    assert.strictEqual(reason(ProxyProtocol.decode(short)), "malformed")
    // a TLV that overruns the header
    assert.strictEqual(
      mutate((b) => (b[16 + 12 + 2] = 0xff)),
      "malformed"
    )
    // over the configured limit, decided from the fixed part alone
    assert.strictEqual(reason(ProxyProtocol.decode(base().subarray(0, 16), { maxHeaderBytes: 20 })), "tooLong")
  })

  it.prop(
    "encode then decode is the identity for IPv4 and IPv6 headers, whatever follows",
    [
      Schema.Array(Byte).check(Schema.isBetweenLength(4, 4)),
      Schema.Array(Byte).check(Schema.isBetweenLength(16, 16)),
      Port,
      Port,
      Schema.Array(Byte)
    ],
    ([a4, a16, p1, p2, tail]) => {
      const groups = Array.from({ length: 8 }, (_, i) =>
        (((a16[2 * i] ?? 0) << 8) | (a16[2 * i + 1] ?? 0)).toString(16)
      )
      for (const h of [
        { ...v4, source: { host: a4.join("."), port: p1 }, destination: { host: "10.0.0.1", port: p2 } },
        { ...v4, family: "IPv6", source: { host: groups.join(":"), port: p1 }, destination: { host: "::", port: p2 } }
      ] satisfies Array<ProxyProtocol.Header>) {
        const bytes = ProxyProtocol.encodeV2(h)
        const all = new Uint8Array([...bytes, ...tail])
        const decoded = header(ProxyProtocol.decode(all))
        assert.strictEqual(decoded.consumed, bytes.length)
        const v1 = ProxyProtocol.encodeV1(decoded.header)
        const again = header(ProxyProtocol.decode(v1)).header
        if (again.command === "proxy" && decoded.header.command === "proxy") {
          assert.deepStrictEqual(again.source, decoded.header.source)
          assert.deepStrictEqual(again.destination, decoded.header.destination)
        } else throw new Error("v1 of a proxied header is a proxied header")
      }
    },
    { arbitrary: { runs: 300 } }
  )

  it.prop(
    "random bytes never throw: a header, incomplete, or a typed error",
    [Schema.Array(Byte).check(Schema.isMaxLength(300)), Schema.Boolean],
    ([bytes, signed]) => {
      const input = signed ? new Uint8Array([...ProxyProtocol.V2_SIGNATURE, ...bytes]) : Uint8Array.from(bytes)
      const decoded = ProxyProtocol.decode(input)
      expect(["Header", "Incomplete", "ProxyProtocolError"]).toContain(decoded._tag)
      if (decoded._tag === "Header") expect(decoded.consumed).toBeLessThanOrEqual(input.length)
    },
    { arbitrary: { runs: 1000 } }
  )
})

describe("PROXY protocol headers written by a real HAProxy", () => {
  /** A backend that keeps the first bytes of each connection; HAProxy in front of it sends a header. */
  const capture = Effect.acquireRelease(
    Effect.callback<{ port: number; next: Effect.Effect<Uint8Array>; server: Net.Server }>((resume) => {
      const waiting: Array<(bytes: Uint8Array) => void> = []
      const arrived: Array<Uint8Array> = []
      const server = Net.createServer((socket) => {
        let data = Buffer.alloc(0)
        socket.on("data", (chunk: Buffer) => {
          data = Buffer.concat([data, chunk])
          if (data.includes("hello")) {
            const bytes = new Uint8Array(data)
            const waiter = waiting.shift()
            if (waiter) waiter(bytes)
            else arrived.push(bytes)
            socket.end("ok")
          }
        })
        socket.on("error", () => {})
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        const next = Effect.callback<Uint8Array>((take) => {
          const bytes = arrived.shift()
          if (bytes) take(Effect.succeed(bytes))
          else waiting.push((b) => take(Effect.succeed(b)))
        })
        resume(Effect.succeed({ port, next, server }))
      })
    }),
    ({ server }) => Effect.sync(() => server.close())
  )

  const viaProxy = (port: number) =>
    Effect.callback<number, Error>((resume) => {
      const socket = Net.connect({ host: "127.0.0.1", port })
      let local = 0
      socket.on("connect", () => {
        local = socket.localPort ?? 0
        socket.write("hello")
      })
      socket.on("data", () => socket.destroy())
      socket.on("close", () => resume(Effect.succeed(local)))
      socket.on("error", (e) => resume(Effect.fail(e)))
    })

  for (const [option, version] of [
    ["send-proxy", 1],
    ["send-proxy-v2 proxy-v2-options authority,unique-id", 2]
  ] as const) {
    it.live(`${option}: the client's address and port, the proxy's frontend as destination`, () =>
      Effect.gen(function* () {
        const backend = yield* capture
        const proxy = yield* HAProxy.make(
          (port) => `frontend fe
  bind 127.0.0.1:${port}
  unique-id-format conn-%[fc_src_port]
  default_backend be
backend be
  server s1 127.0.0.1:${backend.port} ${option}`
        )
        const clientPort = yield* viaProxy(proxy.port)
        const bytes = yield* backend.next
        const decoded = header(ProxyProtocol.decode(bytes))
        assert.strictEqual(decoded.header.version, version)
        assert.strictEqual(new TextDecoder().decode(bytes.subarray(decoded.consumed)), "hello")
        if (decoded.header.command !== "proxy") return assert.fail("expected a proxied connection")
        assert.deepStrictEqual(decoded.header.source, { host: "127.0.0.1", port: clientPort })
        assert.deepStrictEqual(decoded.header.destination, { host: "127.0.0.1", port: proxy.port })
        if (version === 2)
          assert.strictEqual(ProxyProtocol.tlvText(decoded.header, ProxyProtocol.TLV.UNIQUE_ID), `conn-${clientPort}`)
      }).pipe(Effect.scoped)
    )
  }

  it.live("health checks with check-send-proxy arrive as LOCAL", () =>
    Effect.gen(function* () {
      const backend = yield* capture
      yield* HAProxy.make(
        (port) => `frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  option tcp-check
  tcp-check send hello
  server s1 127.0.0.1:${backend.port} send-proxy-v2 check check-send-proxy inter 50ms`
      )
      const bytes = yield* backend.next
      const decoded = header(ProxyProtocol.decode(bytes))
      assert.strictEqual(decoded.header.command, "local")
    }).pipe(Effect.scoped)
  )
})
