import * as http from "node:http"
import * as net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Chunked, Http1, HttpParseError } from "../src/index.js"

const bytes = (text: string): Buffer => Buffer.from(text, "latin1")

/** Feed `input` to the request-head parser cut at `cuts`, growing the buffer as a connection does. */
const parseSplit = (input: Buffer, cuts: ReadonlyArray<number>) => {
  const points = [...new Set(cuts.map((c) => c % (input.byteLength + 1)))].sort((a, b) => a - b)
  points.push(input.byteLength)
  for (const point of points) {
    const result = Http1.parseRequestHead(input.subarray(0, point))
    if (result !== undefined) return result
  }
  return undefined
}

const describeResult = (result: Http1.RequestHead | HttpParseError.HttpParseError | undefined) =>
  result === undefined
    ? "incomplete"
    : result instanceof HttpParseError.HttpParseError
      ? `error ${result.reason}`
      : JSON.stringify(result)

/** Request cases: [name, bytes, accepted by a strict HTTP/1.1 parser]. */
const cases: ReadonlyArray<readonly [string, string, boolean]> = [
  ["simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", true],
  ["HTTP/1.0", "GET /x HTTP/1.0\r\n\r\n", true],
  ["POST with length", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", true],
  ["chunked", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", true],
  ["trailers", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: 1\r\n\r\n", true],
  ["chunk extension", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;x=y\r\na\r\n0\r\n\r\n", true],
  ["value with tab and obs-text", "GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\xe9\r\n\r\n", true],
  ["leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", true],
  [
    "CL and TE",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    false
  ],
  ["duplicate CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", false],
  ["invalid CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3x\r\n\r\nabc", false],
  ["negative CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", false],
  ["obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", false],
  ["bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", false],
  ["NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", false],
  ["control in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", false],
  ["DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", false],
  ["space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n", false],
  ["empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", false],
  ["bad version", "GET / HTTP/2.5\r\nHost: a\r\n\r\n", false],
  ["lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", false],
  ["bad method char", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", false],
  ["control in target", "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", false],
  [
    "invalid chunk size",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    false
  ],
  [
    "space after chunk size",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
    false
  ],
  [
    "missing chunk terminator",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
    false
  ],
  ["chunked not last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", false],
  ["unknown coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", false]
]

/** Our verdict on a whole request: head, then body (chunked through the decoder). */
const ourVerdict = (input: Buffer): boolean => {
  const head = Http1.parseRequestHead(input)
  if (head === undefined || head instanceof HttpParseError.HttpParseError) return false
  if (!head.chunked) return true
  const decoder = new Chunked.Decoder()
  const used = decoder.decode(input.subarray(head.size), () => {})
  return !(used instanceof HttpParseError.HttpParseError) && decoder.done
}

/** node:http's verdict: the request reaches the handler and its body ends, or the server answers 4xx/5xx. */
const nodeVerdict = (port: number, input: Buffer): Promise<boolean> =>
  new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.end(input))
    let answer = ""
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("latin1")
    })
    socket.on("error", reject)
    socket.on("close", () => resolve(answer.startsWith("HTTP/1.1 200")))
  })

describe("Http1 request heads", () => {
  it("parses a request head", () => {
    const head = Http1.parseRequestHead(bytes("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Two:  v  \r\n\r\nrest"))
    assert(head !== undefined && !(head instanceof HttpParseError.HttpParseError))
    assert.strictEqual(head.method, "GET")
    assert.strictEqual(head.target, "/a?b=1")
    assert.deepStrictEqual(head.headers, ["host", "x", "x-two", "v"])
    assert.strictEqual(head.size, 45)
    assert.isTrue(head.keepAlive)
  })

  it("framing and connection semantics", () => {
    const one = Http1.parseRequestHead(
      bytes("POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\n")
    )
    assert(one !== undefined && !(one instanceof HttpParseError.HttpParseError))
    assert.strictEqual(one.minor, 0)
    assert.isTrue(one.keepAlive)
    assert.strictEqual(one.contentLength, 12)
    assert.isTrue(one.expectContinue)
    const two = Http1.parseRequestHead(
      bytes("GET / HTTP/1.1\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\r\n")
    )
    assert(two !== undefined && !(two instanceof HttpParseError.HttpParseError))
    assert.isFalse(two.keepAlive)
    assert.isTrue(two.upgrade)
    const ten = Http1.parseRequestHead(bytes("GET / HTTP/1.0\r\n\r\n"))
    assert(ten !== undefined && !(ten instanceof HttpParseError.HttpParseError))
    assert.isFalse(ten.keepAlive)
  })

  it("limits: head size (431) and header count", () => {
    const big = bytes(`GET / HTTP/1.1\r\nX: ${"a".repeat(20_000)}\r\n\r\n`)
    const result = Http1.parseRequestHead(big)
    assert(result instanceof HttpParseError.HttpParseError)
    assert.strictEqual(result.reason, "HeadTooLarge")
    assert.strictEqual(result.status, 431)
    const partial = Http1.parseRequestHead(big.subarray(0, 17_000))
    assert(partial instanceof HttpParseError.HttpParseError)
    const many = bytes(`GET / HTTP/1.1\r\n${"A: b\r\n".repeat(5)}\r\n`)
    const counted = Http1.parseRequestHead(many, { maxHeaders: 4 })
    assert(counted instanceof HttpParseError.HttpParseError)
    assert.strictEqual(counted.reason, "TooManyHeaders")
    assert.strictEqual(
      Http1.parseRequestHead(bytes("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")) instanceof
        HttpParseError.HttpParseError && 501,
      501
    )
  })

  it.prop(
    "any split of the bytes gives the same result",
    {
      index: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: cases.length - 1 })),
      cuts: Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 400 })))
    },
    ({ index, cuts }) => {
      const input = bytes(cases[index]?.[1] ?? "")
      assert.strictEqual(describeResult(parseSplit(input, cuts)), describeResult(Http1.parseRequestHead(input)))
    }
  )

  it.effect("every case: the verdict of our parser is node:http's, and the expected one", () =>
    Effect.promise(async () => {
      const server = http.createServer((req, res) => {
        req.resume()
        req.on("end", () => res.end("ok"))
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      try {
        for (const [name, text, expected] of cases) {
          const input = bytes(text)
          const node = await nodeVerdict(port, input)
          assert.strictEqual(ourVerdict(input), node, `${name}: diesel and node:http disagree`)
          assert.strictEqual(node, expected, `${name}: node:http's verdict changed`)
        }
      } finally {
        server.closeAllConnections()
        await new Promise<void>((resolve) => server.close(() => resolve()))
      }
    })
  )
})

describe("Http1 response heads", () => {
  it("parses a response head", () => {
    const head = Http1.parseResponseHead(
      bytes("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n")
    )
    assert(head !== undefined && !(head instanceof HttpParseError.HttpParseError))
    assert.strictEqual(head.status, 404)
    assert.strictEqual(head.reason, "Not Found")
    assert.strictEqual(head.contentLength, 0)
    assert.deepStrictEqual(head.headers, ["content-length", "0", "set-cookie", "a=1", "set-cookie", "b=2"])
    const noReason = Http1.parseResponseHead(bytes("HTTP/1.0 200\r\n\r\n"))
    assert(noReason !== undefined && !(noReason instanceof HttpParseError.HttpParseError))
    assert.isFalse(noReason.keepAlive)
    const toClose = Http1.parseResponseHead(bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"))
    assert(toClose !== undefined && !(toClose instanceof HttpParseError.HttpParseError))
    assert.isTrue(toClose.otherTransferEncoding)
    assert.isFalse(toClose.keepAlive)
    assert.isFalse(Http1.responseHasBody("HEAD", 200))
    assert.isFalse(Http1.responseHasBody("GET", 304))
  })

  it("rejects malformed status lines and smuggling vectors", () => {
    for (const text of [
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\r\n  b\r\n\r\n",
      "HTTX/1.1 200 OK\r\n\r\n"
    ]) {
      assert.instanceOf(Http1.parseResponseHead(bytes(text)), HttpParseError.HttpParseError, JSON.stringify(text))
    }
  })

  it.prop(
    "any split gives the same response head",
    { cut: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 80 })) },
    ({ cut }) => {
      const input = bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
      const at = Math.min(cut, input.byteLength)
      const first = Http1.parseResponseHead(input.subarray(0, at))
      const whole = Http1.parseResponseHead(input)
      const result = first ?? whole
      assert.deepStrictEqual(result, whole)
    }
  )
})

describe("Chunked", () => {
  const decodeSplit = (input: Buffer, cuts: ReadonlyArray<number>) => {
    const decoder = new Chunked.Decoder()
    const data: Array<Buffer> = []
    const points = [...new Set(cuts.map((c) => c % (input.byteLength + 1)))].sort((a, b) => a - b)
    points.push(input.byteLength)
    let at = 0
    let used = 0
    for (const point of points) {
      if (decoder.done) break
      const result = decoder.decode(input.subarray(at, point), (d) => data.push(Buffer.from(d)))
      if (result instanceof HttpParseError.HttpParseError) return `error ${result.reason}`
      used += result
      at = point
    }
    return JSON.stringify({
      done: decoder.done,
      used,
      body: Buffer.concat(data).toString("latin1"),
      trailers: decoder.trailers
    })
  }

  const bodies = [
    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT",
    "A\r\n0123456789\r\n0\r\nX-Sum: 1\r\nX-Other: two\r\n\r\n",
    "3\r\nabcd\r\n0\r\n\r\n",
    "3\r\nabc\r\n0\r\nbad header\r\n\r\n",
    "g\r\n"
  ]

  it("decodes data, trailers and the end", () => {
    assert.strictEqual(
      decodeSplit(bytes(bodies[0] ?? ""), []),
      JSON.stringify({ done: true, used: 32, body: "hello world", trailers: [] })
    )
    assert.strictEqual(
      decodeSplit(bytes(bodies[1] ?? ""), []),
      JSON.stringify({ done: true, used: 44, body: "0123456789", trailers: ["x-sum", "1", "x-other", "two"] })
    )
    assert.strictEqual(decodeSplit(bytes(bodies[2] ?? ""), []), "error InvalidChunkTerminator")
    assert.match(decodeSplit(bytes(bodies[3] ?? ""), []), /^error /)
    assert.strictEqual(decodeSplit(bytes(bodies[4] ?? ""), []), "error InvalidChunkSize")
  })

  it("body limit is 413", () => {
    const decoder = new Chunked.Decoder({ maxBodySize: 4 })
    const result = decoder.decode(bytes("5\r\nhello\r\n0\r\n\r\n"), () => {})
    assert(result instanceof HttpParseError.HttpParseError)
    assert.strictEqual(result.status, 413)
  })

  it.prop(
    "any split of a chunked body gives the same result",
    {
      index: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: bodies.length - 1 })),
      cuts: Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 60 })))
    },
    ({ index, cuts }) => {
      const input = bytes(bodies[index] ?? "")
      assert.strictEqual(decodeSplit(input, cuts), decodeSplit(input, []))
    }
  )

  it.prop("encode then decode is the identity", { parts: Schema.Array(Schema.String) }, ({ parts }) => {
    const encoded = Buffer.concat([
      ...parts.map((p) => Chunked.encode(Buffer.from(p))),
      Chunked.end(["x-n", String(parts.length)])
    ])
    const decoder = new Chunked.Decoder()
    const out: Array<Buffer> = []
    const used = decoder.decode(encoded, (d) => out.push(Buffer.from(d)))
    assert.strictEqual(used, encoded.byteLength)
    assert.isTrue(decoder.done)
    assert.isTrue(Buffer.concat(out).equals(Buffer.concat(parts.map((p) => Buffer.from(p)))))
    assert.deepStrictEqual(decoder.trailers, ["x-n", String(parts.length)])
  })
})

/** Response cases, checked against node:http's client parser (llhttp in response mode). */
const responseCases: ReadonlyArray<readonly [string, string, boolean]> = [
  ["200 with length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true],
  ["no reason phrase", "HTTP/1.1 204\r\n\r\n", true],
  ["chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", true],
  ["two status digits", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", false],
  [
    "CL and TE",
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    false
  ],
  ["duplicate CL", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", false],
  ["obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n  b\r\nContent-Length: 0\r\n\r\n", false],
  ["bad protocol", "HTTX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false],
  ["NUL in value", "HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n", false]
]

const clientVerdict = (text: string): Promise<boolean> =>
  new Promise((resolve) => {
    const server = net.createServer((socket) => {
      socket.once("data", () => socket.end(bytes(text)))
      socket.on("error", () => {})
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const done = (verdict: boolean) => server.close(() => resolve(verdict))
      const request = http.get({ host: "127.0.0.1", port, agent: false }, (response) => {
        response.resume()
        response.on("end", () => done(true))
        response.on("error", () => done(false))
      })
      request.on("error", () => done(false))
    })
  })

const ourResponseVerdict = (input: Buffer): boolean => {
  const head = Http1.parseResponseHead(input)
  if (head === undefined || head instanceof HttpParseError.HttpParseError) return false
  if (!head.chunked) return true
  const decoder = new Chunked.Decoder()
  const used = decoder.decode(input.subarray(head.size), () => {})
  return !(used instanceof HttpParseError.HttpParseError) && decoder.done
}

describe("Http1 response heads against node:http's client", () => {
  it.effect("every case: the same verdict as node:http's client", () =>
    Effect.promise(async () => {
      for (const [name, text, expected] of responseCases) {
        const node = await clientVerdict(text)
        assert.strictEqual(ourResponseVerdict(bytes(text)), node, `${name}: diesel and node:http disagree`)
        assert.strictEqual(node, expected, `${name}: node:http's verdict changed`)
      }
    })
  )
})
