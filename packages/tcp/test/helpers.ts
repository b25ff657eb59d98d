/**
 * Test harness: peers on the network in context (shared cases), raw node:net peers (the tests control their exact behaviour) and a fake socket whose
 * reader yields given chunks.
 */
import * as Net from "node:net"
import { Network } from "@diesel/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"

/** A raw client socket, connected, destroyed with the scope. */
export const rawConnect = (port: number, host = "127.0.0.1"): Effect.Effect<Net.Socket, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<Net.Socket, Error>((resume) => {
      const socket = Net.createConnection({ host, port })
      socket.once("connect", () => resume(Effect.succeed(socket)))
      socket.once("error", (error) => resume(Effect.fail(error)))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

/** Write and wait for the write callback. */
export const rawWrite = (socket: Net.Socket, data: string | Uint8Array): Effect.Effect<void, Error> =>
  Effect.callback<void, Error>((resume) => {
    socket.write(data, (error) => resume(error ? Effect.fail(error) : Effect.void))
  })

/** Read until `n` bytes arrived (or the socket ends), returning what arrived. */
export const rawRead = (socket: Net.Socket, n: number): Effect.Effect<Buffer> =>
  Effect.callback<Buffer>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const done = () => {
      socket.off("data", onData)
      socket.off("end", done)
      socket.off("close", done)
      resume(Effect.succeed(Buffer.concat(chunks)))
    }
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.byteLength
      if (size >= n) done()
    }
    socket.on("data", onData)
    socket.once("end", done)
    socket.once("close", done)
    socket.resume()
    return Effect.sync(() => {
      socket.off("data", onData)
      socket.off("end", done)
      socket.off("close", done)
    })
  })

/** Read everything until the peer closes. */
export const rawReadToEnd = (socket: Net.Socket): Effect.Effect<Buffer> => rawRead(socket, Number.POSITIVE_INFINITY)

/**
 * A socket whose reader yields `chunks` (one per pull), then ends as a peer FIN does. Writes are
 * collected in `written`.
 */
export const fakeSocket = (chunks: ReadonlyArray<Uint8Array>) => {
  const written: Array<Uint8Array | string> = []
  let next = 0
  const socket = Socket.make({
    reader: Effect.succeed({
      pull: Effect.suspend(() => {
        const chunk = chunks[next++]
        return chunk === undefined
          ? Effect.fail(new Socket.SocketError({ reason: new Socket.SocketCloseError({ code: 1000 }) }))
          : Effect.succeed([chunk] as const)
      }),
      upgrade: () =>
        Effect.fail(new Socket.SocketError({ reason: new Socket.SocketUpgradeError({ cause: "unsupported" }) }))
    }),
    writer: Effect.succeed({
      write: (chunk: Uint8Array | string | Socket.CloseEvent) =>
        Effect.sync(() => {
          if (!Socket.isCloseEvent(chunk)) written.push(chunk)
        }),
      writeAll: (all: ReadonlyArray<Uint8Array | string>) =>
        Effect.sync(() => {
          written.push(...all)
        })
    })
  })
  return { socket, written }
}

export { type NetworkCase, onBothNetworks } from "@diesel/sim/vitest"

/** A plain TCP client driven by the test, connected through the `Network` in context. */
export interface Peer {
  /** Write and wait until the network took the bytes. */
  readonly write: (data: string | Uint8Array) => Effect.Effect<void, unknown>
  /** Read until `n` bytes arrived (or the stream ends), returning what arrived (at most `n` bytes). */
  readonly read: (n: number) => Effect.Effect<Buffer>
  /** Half-close: send FIN, keep reading. */
  readonly end: Effect.Effect<void>
}

/** A connected peer, closed with the scope. */
export const peerConnect = (port: number, host = "127.0.0.1"): Effect.Effect<Peer, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const network = yield* Network.Network
    const socket = yield* network.connect({ host, port })
    const reader = yield* socket.reader
    const writerScope = yield* Scope.fork(yield* Effect.scope)
    const writer = yield* Scope.provide(socket.writer, writerScope)
    let pending = Buffer.alloc(0)
    let ended = false
    const read = (n: number): Effect.Effect<Buffer> =>
      Effect.gen(function* () {
        const chunks: Array<Buffer> = [pending]
        let size = pending.byteLength
        while (size < n && !ended) {
          const result = yield* Effect.result(reader.pull)
          if (result._tag === "Failure") {
            ended = true
            break
          }
          for (const chunk of result.success) {
            const buffer = Buffer.from(chunk)
            chunks.push(buffer)
            size += buffer.byteLength
          }
        }
        const all = Buffer.concat(chunks)
        pending = all.subarray(Math.min(n, all.byteLength))
        return all.subarray(0, Math.min(n, all.byteLength))
      })
    return {
      write: (data) => writer.write(data),
      read,
      end: Scope.close(writerScope, Exit.void)
    }
  })

/** Read everything until the peer closes. */
export const peerReadToEnd = (peer: Peer): Effect.Effect<Buffer> => peer.read(Number.POSITIVE_INFINITY)

/** Split `bytes` at the given (sorted, deduplicated) cut points. */
export const splitAt = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b)
  const out: Array<Uint8Array> = []
  let from = 0
  for (const p of points) {
    if (p > from) out.push(bytes.subarray(from, p))
    from = Math.max(from, p)
  }
  if (from < bytes.byteLength) out.push(bytes.subarray(from))
  return out
}

export const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString("utf8")
