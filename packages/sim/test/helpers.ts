import { Network } from "@diesel/core"
import { Effect } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import type * as Scope from "effect/Scope"
import type * as DatagramSocket from "effect/socket/DatagramSocket"

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
