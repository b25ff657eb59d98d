/** Test peers of the Workers example: a port free for TCP and UDP, one request on a fresh TCP connection. */
import * as Dgram from "node:dgram"
import * as Net from "node:net"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"

export const freePort = Effect.callback<number>((resume) => {
  // free for TCP and UDP both
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => {
      const udp = Dgram.createSocket("udp4")
      udp.once("error", () => resume(Effect.suspend(() => freePort)))
      udp.bind(port, "127.0.0.1", () => udp.close(() => resume(Effect.succeed(port))))
    })
  })
})

export class RequestFailed extends Data.TaggedError("RequestFailed")<{ readonly message: string }> {}

/** One request on a fresh connection: the answering worker's "index generation pid". */
export const request = (port: number, text = "hi") =>
  Effect.callback<string, RequestFailed>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    let data = ""
    socket.on("connect", () => socket.write(`${text}\r\n`))
    socket.on("data", (chunk) => {
      data += chunk.toString("utf8")
      if (data.endsWith("\r\n")) {
        socket.destroy()
        resume(Effect.succeed(data.slice(0, -2)))
      }
    })
    socket.on("error", (error) => resume(Effect.fail(new RequestFailed({ message: String(error) }))))
    socket.on("close", () => resume(Effect.fail(new RequestFailed({ message: `closed after "${data}"` }))))
    return Effect.sync(() => socket.destroy())
  })
