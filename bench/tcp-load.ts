/**
 * Load generator for bench/tcp.ts, run as a separate process so that the server process measures only
 * the server. Reads one JSON command per stdin line, runs it against 127.0.0.1, and prints one JSON
 * result per line: `{ ok: true, elapsedMs, messages, bytes }` or `{ ok: false, error }`.
 *
 * Commands:
 * - `{ mode: "reqresp", port, connections, requests }`: `connections` connections, one request in flight
 *   each, `requests` CRLF-line round trips in all.
 * - `{ mode: "bulk", port, connections, bytes }`: each connection streams `bytes` and reads the echo.
 * - `{ mode: "lines", port, lines }`: one connection pipelines `lines` CRLF lines in large writes and
 *   counts the answer lines.
 */
import * as Net from "node:net"
import * as Readline from "node:readline"

interface ReqResp {
  readonly mode: "reqresp"
  readonly port: number
  readonly connections: number
  readonly requests: number
}
interface Bulk {
  readonly mode: "bulk"
  readonly port: number
  readonly connections: number
  readonly bytes: number
}
interface Lines {
  readonly mode: "lines"
  readonly port: number
  readonly lines: number
}
type Command = ReqResp | Bulk | Lines

interface Outcome {
  readonly elapsedMs: number
  readonly messages: number
  readonly bytes: number
}

const connect = (port: number): Promise<Net.Socket> =>
  new Promise((resolve, reject) => {
    const socket = Net.createConnection({ host: "127.0.0.1", port, noDelay: true })
    socket.once("connect", () => resolve(socket))
    socket.once("error", reject)
  })

const countNewlines = (chunk: Buffer): number => {
  let n = 0
  let i = chunk.indexOf(10)
  while (i >= 0) {
    n++
    i = chunk.indexOf(10, i + 1)
  }
  return n
}

const reqresp = async (command: ReqResp): Promise<Outcome> => {
  const sockets = await Promise.all(Array.from({ length: command.connections }, () => connect(command.port)))
  const request = Buffer.from("PING 0123456789abcdef\r\n")
  let remaining = command.requests
  const start = process.hrtime.bigint()
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve, reject) => {
          socket.on("error", reject)
          const next = () => {
            if (remaining <= 0) {
              resolve()
              return
            }
            remaining--
            socket.write(request)
          }
          socket.on("data", (chunk: Buffer) => {
            for (let n = countNewlines(chunk); n > 0; n--) next()
          })
          next()
        })
    )
  )
  const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6
  for (const socket of sockets) socket.destroy()
  return { elapsedMs, messages: command.requests, bytes: command.requests * request.byteLength }
}

const bulk = async (command: Bulk): Promise<Outcome> => {
  const sockets = await Promise.all(Array.from({ length: command.connections }, () => connect(command.port)))
  const block = Buffer.alloc(64 * 1024, 120)
  const start = process.hrtime.bigint()
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve, reject) => {
          socket.on("error", reject)
          let received = 0
          let sent = 0
          socket.on("data", (chunk: Buffer) => {
            received += chunk.byteLength
            if (received >= command.bytes) resolve()
          })
          const pump = () => {
            while (sent < command.bytes) {
              sent += block.byteLength
              if (!socket.write(block)) {
                socket.once("drain", pump)
                return
              }
            }
          }
          pump()
        })
    )
  )
  const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6
  for (const socket of sockets) socket.destroy()
  const bytes = command.bytes * command.connections
  return { elapsedMs, messages: bytes / block.byteLength, bytes }
}

const lines = async (command: Lines): Promise<Outcome> => {
  const socket = await connect(command.port)
  const line = "SET key value-0123456789\r\n"
  const batch = 1000
  const payload = Buffer.from(line.repeat(batch))
  const start = process.hrtime.bigint()
  await new Promise<void>((resolve, reject) => {
    socket.on("error", reject)
    let answered = 0
    socket.on("data", (chunk: Buffer) => {
      answered += countNewlines(chunk)
      if (answered >= command.lines) resolve()
    })
    let sent = 0
    const pump = () => {
      while (sent < command.lines) {
        sent += batch
        if (!socket.write(payload)) {
          socket.once("drain", pump)
          return
        }
      }
    }
    pump()
  })
  const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6
  socket.destroy()
  return { elapsedMs, messages: command.lines, bytes: command.lines * line.length }
}

const run = (command: Command): Promise<Outcome> => {
  switch (command.mode) {
    case "reqresp":
      return reqresp(command)
    case "bulk":
      return bulk(command)
    case "lines":
      return lines(command)
  }
}

const input = Readline.createInterface({ input: process.stdin })
input.on("line", (text) => {
  const command = JSON.parse(text) as Command
  run(command).then(
    (outcome) => process.stdout.write(`${JSON.stringify({ ok: true, ...outcome })}\n`),
    (error: unknown) => process.stdout.write(`${JSON.stringify({ ok: false, error: String(error) })}\n`)
  )
})
input.on("close", () => process.exit(0))
