import { Network } from "@diesel/core"
import { Effect } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import type * as Scope from "effect/Scope"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import type * as Socket from "effect/socket/Socket"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const text = (bytes: Uint8Array): string => decoder.decode(bytes)
export const bytes = (value: string): Uint8Array => encoder.encode(value)

/** A UDP echo server bound on the current host; returns its port. */
export const udpEcho = (port = 7): Effect.Effect<number, DatagramSocket.DatagramSocketError, Scope.Scope> =>
  Effect.gen(function* () {
    const network = yield* Network.Network
    const socket = yield* network.datagramSocket({ bind: { port } })
    const reader = yield* socket.reader
    const writer = yield* socket.writer
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(reader.pull, (batch) =>
          Effect.forEach(batch, (datagram) => writer.write({ payload: datagram.payload, address: datagram }), {
            discard: true
          })
        )
      ).pipe(Effect.ignore)
    )
    return reader.address.port
  })

/** A bound UDP socket on the current host. */
export const udpSocket = (options?: Network.DatagramOptions) =>
  Effect.gen(function* () {
    const network = yield* Network.Network
    const socket = yield* network.datagramSocket(options ?? {})
    const reader = yield* socket.reader
    const writer = yield* socket.writer
    return { reader, writer }
  })

export const inet = (address: string, port: number): NetAddress.InetAddress =>
  NetAddress.inetAddressFromIpStringUnsafe(address, port)

/** A TCP echo server listening on the current host; returns its port. */
export const tcpEcho = (port = 0) =>
  Effect.gen(function* () {
    const network = yield* Network.Network
    const server = yield* network.listen({ port })
    yield* Effect.forkScoped(
      server.run((socket) =>
        Effect.gen(function* () {
          const reader = yield* socket.reader
          const writer = yield* socket.writer
          while (true) yield* writer.writeAll(yield* reader.pull)
        }).pipe(Effect.scoped, Effect.ignore)
      )
    )
    return NetAddress.isInetAddress(server.address) ? server.address.port : 0
  })

/** Read from a pull until `n` bytes arrived. */
export const readBytes = (
  pull: Effect.Effect<ReadonlyArray<Uint8Array | string>, Socket.SocketError>,
  n: number
): Effect.Effect<Uint8Array, Socket.SocketError> =>
  Effect.gen(function* () {
    const out = new Uint8Array(n)
    let offset = 0
    while (offset < n) {
      for (const chunk of yield* pull) {
        const data = typeof chunk === "string" ? encoder.encode(chunk) : chunk
        out.set(data.subarray(0, n - offset), offset)
        offset += data.byteLength
      }
    }
    return out
  })

/** Read everything until the peer closes (SocketCloseError 1000). */
export const readAll = (
  pull: Effect.Effect<ReadonlyArray<Uint8Array | string>, Socket.SocketError>
): Effect.Effect<string, Socket.SocketError> =>
  Effect.gen(function* () {
    let out = ""
    while (true) {
      const result = yield* Effect.result(pull)
      if (result._tag === "Failure") {
        const reason = result.failure.reason
        if (reason._tag === "SocketCloseError" && reason.code === 1000) return out
        return yield* Effect.fail(result.failure)
      }
      for (const chunk of result.success) out += typeof chunk === "string" ? chunk : decoder.decode(chunk)
    }
  })

/** The Node-style error code carried by a socket error's cause, if any. */
export const causeCode = (error: Socket.SocketError): string | undefined => {
  const cause: unknown = "cause" in error.reason ? error.reason.cause : undefined
  return typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined
}
