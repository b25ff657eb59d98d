import { spawn } from "node:child_process"
import { once } from "node:events"
import { ConnectedLoop, Connection } from "@diesel/core"
import { WebSocket, WebSocketServer } from "@diesel/http"
import { TCPService } from "@diesel/tcp"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ws from "ws"

/** A `ws` server on a free loopback port, echoing every message; stopped with the scope. */
const wsEchoServer = (options: Ws.ServerOptions = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const server = new Ws.WebSocketServer({ host: "127.0.0.1", port: 0, ...options })
      server.on("connection", (socket) => {
        socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }))
      })
      await once(server, "listening")
      const address = server.address()
      return { server, port: typeof address === "object" && address !== null ? address.port : 0 }
    }),
    ({ server }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            for (const client of server.clients) client.terminate()
            server.close(() => resolve())
          })
      )
  )

/** Our echo server on a free port. */
const ourServer = (options: Partial<WebSocketServer.Options<void, unknown, never>> = {}) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      WebSocketServer.layer({
        host: "127.0.0.1",
        port: 0,
        protocols: ["chat.v2", "chat.v1"],
        handler: Effect.forever(Effect.flatMap(WebSocket.message, Connection.send)),
        ...options
      })
    )
    return Context.get(context, TCPService.TCPService).port
  })

/** A `ws` client: send each message, collect as many answers, then close. */
const wsClient = (
  url: string,
  messages: ReadonlyArray<string | Buffer>,
  options: Ws.ClientOptions = {},
  protocols: Array<string> = []
) =>
  Effect.promise(async () => {
    const socket = new Ws.WebSocket(url, protocols, options)
    await once(socket, "open")
    const got: Array<string | Buffer> = []
    const done = new Promise<void>((resolve) => {
      socket.on("message", (data: Buffer, isBinary) => {
        got.push(isBinary ? data : data.toString())
        if (got.length === messages.length) resolve()
      })
    })
    for (const message of messages) socket.send(message)
    if (messages.length > 0) await done
    const protocol = socket.protocol
    const extensions = socket.extensions
    socket.close(1000, "bye")
    const [code] = (await once(socket, "close")) as [number]
    return { got, protocol, extensions, code }
  })

const PY_SERVER = `
import asyncio, sys, websockets
async def echo(ws, path=None):
    async for message in ws:
        await ws.send(message)
async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, compression=sys.argv[1] if sys.argv[1] != "none" else None, max_size=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
`

/** Python websockets 10.4 (Debian) as an echo server, a direct child on a free port. */
const pythonServer = (compression: "deflate" | "none") =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const child = spawn("/usr/bin/python3", ["-c", PY_SERVER, compression], { stdio: ["ignore", "pipe", "inherit"] })
      const [line] = (await once(child.stdout, "data")) as [Buffer]
      return { child, port: Number(line.toString().trim()) }
    }),
    ({ child }) =>
      Effect.promise(async () => {
        if (child.exitCode === null) {
          child.kill("SIGTERM")
          await once(child, "exit")
        }
      })
  )

const big = Buffer.alloc(200_000, "abc")

describe("WebSocket client", () => {
  it.live("talks to a ws server: text, binary, large and fragmented-by-ws messages, subprotocol", () =>
    Effect.gen(function* () {
      const { port } = yield* wsEchoServer({ handleProtocols: (offered) => [...offered].at(-1) ?? false })
      const result = yield* WebSocket.connect(
        `ws://127.0.0.1:${port}/echo?x=1`,
        (ws) =>
          Effect.gen(function* () {
            yield* Connection.send("héllo")
            const text = yield* WebSocket.message
            yield* Connection.send(Uint8Array.from([1, 2, 3]))
            const binary = yield* WebSocket.message
            yield* Connection.send(big)
            const large = yield* WebSocket.message
            return { text, binary, large, protocol: ws.protocol }
          }),
        { protocols: ["a", "b"] }
      )
      assert.strictEqual(result.text, "héllo")
      assert.deepStrictEqual([...(result.binary as Uint8Array)], [1, 2, 3])
      assert.strictEqual(Buffer.compare(Buffer.from(result.large as Uint8Array), big), 0)
      assert.strictEqual(result.protocol, "b")
    }).pipe(Effect.scoped)
  )

  it.live("negotiates permessage-deflate with a ws server (both context takeover settings)", () =>
    Effect.gen(function* () {
      for (const clientNoContextTakeover of [false, true]) {
        const { port } = yield* wsEchoServer({ perMessageDeflate: { threshold: 0 } })
        const out = yield* WebSocket.connect(
          `ws://127.0.0.1:${port}/`,
          (ws) =>
            Effect.gen(function* () {
              const got: Array<WebSocket.Message> = []
              for (const m of ["compress me ".repeat(50), "compress me ".repeat(50), big]) {
                yield* Connection.send(m)
                got.push(yield* WebSocket.message)
              }
              return { got, extensions: ws.extensions }
            }),
          { deflate: { clientNoContextTakeover, threshold: 0 } }
        )
        assert.include(out.extensions, "permessage-deflate")
        assert.strictEqual(out.got[0], "compress me ".repeat(50))
        assert.strictEqual(out.got[1], "compress me ".repeat(50))
        assert.strictEqual(Buffer.compare(Buffer.from(out.got[2] as Uint8Array), big), 0)
      }
    }).pipe(Effect.scoped)
  )

  it.live("children forked from the handler push to the same socket", () =>
    Effect.gen(function* () {
      const { port } = yield* wsEchoServer()
      const got = yield* WebSocket.connect(`ws://127.0.0.1:${port}/`, () =>
        Effect.gen(function* () {
          yield* ConnectedLoop.forkChild(Effect.forEach([1, 2, 3], (i) => Connection.send(`child ${i}`)))
          const out: Array<WebSocket.Message> = []
          for (let i = 0; i < 3; i++) out.push(yield* WebSocket.message)
          return out
        })
      )
      assert.deepStrictEqual(got, ["child 1", "child 2", "child 3"])
    }).pipe(Effect.scoped)
  )

  it.live("a frame over the limit fails with MessageTooBig", () =>
    Effect.gen(function* () {
      const { port } = yield* wsEchoServer()
      const error = yield* WebSocket.connect(
        `ws://127.0.0.1:${port}/`,
        Effect.andThen(Connection.send(Buffer.alloc(5000)), WebSocket.message),
        { maxMessageSize: 1000 }
      ).pipe(Effect.flip)
      assert.strictEqual(error._tag, "WebSocketError")
      assert.strictEqual(error._tag === "WebSocketError" ? error.reason : "", "MessageTooBig")
    }).pipe(Effect.scoped)
  )

  for (const compression of ["none", "deflate"] as const) {
    it.live(`talks to a Python websockets 10.4 server (compression: ${compression})`, () =>
      Effect.gen(function* () {
        const { port } = yield* pythonServer(compression)
        const got = yield* WebSocket.connect(
          `ws://127.0.0.1:${port}/`,
          Effect.gen(function* () {
            const out: Array<WebSocket.Message> = []
            for (const m of ["hi", "€uro ".repeat(100), Uint8Array.from([0, 255])]) {
              yield* Connection.send(m)
              out.push(yield* WebSocket.message)
            }
            return out
          }),
          { deflate: compression === "deflate" }
        )
        assert.strictEqual(got[0], "hi")
        assert.strictEqual(got[1], "€uro ".repeat(100))
        assert.deepStrictEqual([...(got[2] as Uint8Array)], [0, 255])
      }).pipe(Effect.scoped)
    )
  }
})

describe("WebSocket server", () => {
  it.live("serves ws clients: echo, subprotocol, close handshake", () =>
    Effect.gen(function* () {
      const port = yield* ourServer()
      const out = yield* wsClient(`ws://127.0.0.1:${port}/`, ["one", Buffer.from([9, 8]), big.toString()], {}, [
        "chat.v1",
        "chat.v2"
      ])
      assert.deepStrictEqual(out.got[0], "one")
      assert.deepStrictEqual([...(out.got[1] as Buffer)], [9, 8])
      assert.strictEqual(out.got[2], big.toString())
      assert.strictEqual(out.protocol, "chat.v2")
      assert.strictEqual(out.code, 1000)
    }).pipe(Effect.scoped)
  )

  it.live("negotiates permessage-deflate with ws clients", () =>
    Effect.gen(function* () {
      const port = yield* ourServer({ deflate: { threshold: 0 } })
      for (const clientNoContextTakeover of [false, true]) {
        const out = yield* wsClient(
          `ws://127.0.0.1:${port}/`,
          ["zip ".repeat(100), "zip ".repeat(100), big.toString()],
          {
            perMessageDeflate: { clientNoContextTakeover, threshold: 0 }
          }
        )
        assert.include(Object.keys(out.extensions === "" ? {} : { [out.extensions]: 1 }).join(), "permessage-deflate")
        assert.strictEqual(out.got[1], "zip ".repeat(100))
        assert.strictEqual(out.got[2], big.toString())
      }
    }).pipe(Effect.scoped)
  )

  it.live("serves Node's built-in WebSocket client", () =>
    Effect.gen(function* () {
      const port = yield* ourServer()
      const got = yield* Effect.promise(
        () =>
          new Promise<string>((resolve, reject) => {
            const socket = new globalThis.WebSocket(`ws://127.0.0.1:${port}/`, ["chat.v1"])
            socket.onopen = () => socket.send("from undici")
            socket.onerror = () => reject(new Error("websocket error"))
            socket.onmessage = (event) => {
              resolve(`${String(event.data)} ${socket.protocol}`)
              socket.close()
            }
          })
      )
      assert.strictEqual(got, "from undici chat.v1")
    }).pipe(Effect.scoped)
  )

  it.live("refuses an origin the hook rejects (403) and an unmasked client frame (1002)", () =>
    Effect.gen(function* () {
      const port = yield* ourServer({ checkOrigin: (origin) => origin === "https://good.example" })
      const refused = yield* Effect.promise(
        () =>
          new Promise<number>((resolve) => {
            const socket = new Ws.WebSocket(`ws://127.0.0.1:${port}/`, { origin: "https://evil.example" })
            socket.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0))
            socket.on("error", () => undefined)
          })
      )
      assert.strictEqual(refused, 403)
      // skipUTF8Validation aside, ws has no switch for unmasked frames: write one on its raw socket
      const code = yield* Effect.promise(async () => {
        const socket = new Ws.WebSocket(`ws://127.0.0.1:${port}/`, { origin: "https://good.example" })
        await once(socket, "open")
        const raw = (socket as unknown as { _socket: import("node:net").Socket })._socket
        raw.write(Buffer.from([0x81, 0x02, 0x68, 0x69]))
        const [closeCode] = (await once(socket, "close")) as [number]
        return closeCode
      })
      assert.strictEqual(code, 1002)
    }).pipe(Effect.scoped)
  )
})
