/**
 * UDP load generator for bench/udp.ts and bench/udp-idle.ts, run as a separate process (plain node:dgram, so
 * that its cost never lands on the server being measured). Node 24 runs it directly (type stripping).
 *
 *   echo mode:  node bench/udp-load.ts echo <port> <payloadBytes> <inFlight> <sockets> <warmupMs> <measureMs>
 *     prints "measure-start", then after measureMs "measure-end <json>" with { received, sent, elapsedMs }
 *   peers mode: node bench/udp-load.ts peers <port> <count>
 *     one datagram from each of <count> distinct source addresses (127.0.0.x, fixed ports), in batches of
 *     1000: after each it prints "batch <sent so far>" and waits for a line on stdin; then "peers-done <json>"
 */
import * as Dgram from "node:dgram"

const [mode, portArg, ...rest] = process.argv.slice(2)
const port = Number(portArg)

const echo = async (
  payloadBytes: number,
  inFlight: number,
  socketCount: number,
  warmupMs: number,
  measureMs: number
) => {
  const payload = Buffer.alloc(payloadBytes, 7)
  const perSocket = Math.max(1, Math.floor(inFlight / socketCount))
  let counting = false
  let received = 0
  let sent = 0
  const sockets: Array<Dgram.Socket> = []
  const lastHeard: Array<number> = []
  for (let i = 0; i < socketCount; i++) {
    const socket = Dgram.createSocket("udp4")
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve))
    socket.connect(port, "127.0.0.1")
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()))
    socket.setRecvBufferSize(4 * 1024 * 1024)
    socket.setSendBufferSize(4 * 1024 * 1024)
    const index = i
    lastHeard.push(Date.now())
    socket.on("message", () => {
      lastHeard[index] = Date.now()
      if (counting) received++
      socket.send(payload)
      if (counting) sent++
    })
    socket.on("error", () => {})
    sockets.push(socket)
  }
  const fill = (socket: Dgram.Socket) => {
    for (let j = 0; j < perSocket; j++) socket.send(payload)
  }
  for (const socket of sockets) fill(socket)
  // a lost datagram shrinks a socket's window: refill a socket that has heard nothing for 100 ms
  const refill = setInterval(() => {
    const now = Date.now()
    sockets.forEach((socket, i) => {
      if (now - (lastHeard[i] ?? now) > 100) {
        lastHeard[i] = now
        fill(socket)
      }
    })
  }, 50)
  await new Promise((resolve) => setTimeout(resolve, warmupMs))
  process.stdout.write("measure-start\n")
  counting = true
  const start = process.hrtime.bigint()
  await new Promise((resolve) => setTimeout(resolve, measureMs))
  counting = false
  const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6
  process.stdout.write(`measure-end ${JSON.stringify({ received, sent, elapsedMs })}\n`)
  clearInterval(refill)
  for (const socket of sockets) socket.close()
}

let stdinBuffer = ""
const lineWaiters: Array<() => void> = []
const nextLine = (): Promise<void> =>
  new Promise((resolve) => {
    const newline = stdinBuffer.indexOf("\n")
    if (newline >= 0) {
      stdinBuffer = stdinBuffer.slice(newline + 1)
      resolve()
    } else lineWaiters.push(resolve)
  })

const peers = async (count: number) => {
  process.stdin.setEncoding("utf8")
  process.stdin.on("data", (chunk: string) => {
    stdinBuffer += chunk
    while (stdinBuffer.includes("\n") && lineWaiters.length > 0) {
      stdinBuffer = stdinBuffer.slice(stdinBuffer.indexOf("\n") + 1)
      lineWaiters.shift()?.()
    }
  })
  const payload = Buffer.from("hello")
  let done = 0
  let failed = 0
  let host = 1
  let nextPort = 10_000
  const batch = 1000
  while (done < count) {
    const opened: Array<Promise<void>> = []
    for (let i = 0; i < batch && done + opened.length < count; i++) {
      if (nextPort > 29_999) {
        host++
        nextPort = 10_000
      }
      const address = `127.0.0.${host}`
      const localPort = nextPort++
      opened.push(
        new Promise<void>((resolve) => {
          const socket = Dgram.createSocket("udp4")
          socket.on("error", () => {
            failed++
            socket.close()
            resolve()
          })
          socket.bind(localPort, address, () => {
            socket.send(payload, port, "127.0.0.1", (error) => {
              if (error === null) done++
              else failed++
              socket.close()
              resolve()
            })
          })
        })
      )
    }
    await Promise.all(opened)
    // wait until the server says it has read this batch, so that its socket buffer never overflows
    process.stdout.write(`batch ${done}\n`)
    await nextLine()
  }
  process.stdout.write(`peers-done ${JSON.stringify({ sent: done, failed })}\n`)
  process.stdin.destroy()
}

if (mode === "echo") {
  const [size, inFlight, sockets, warmup, measure] = rest.map(Number)
  await echo(size ?? 64, inFlight ?? 64, sockets ?? 8, warmup ?? 500, measure ?? 2000)
} else if (mode === "peers") {
  await peers(Number(rest[0] ?? 100_000))
} else {
  process.stderr.write(`unknown mode ${mode}\n`)
  process.exit(2)
}
