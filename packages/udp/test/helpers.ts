import { Network } from "@diesel/core"
import * as Effect from "effect/Effect"
import type * as NetAddress from "effect/net/NetAddress"
import type * as Scope from "effect/Scope"
import type * as DatagramSocket from "effect/socket/DatagramSocket"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const text = (bytes: Uint8Array): string => decoder.decode(bytes)
export const bytes = (value: string): Uint8Array => encoder.encode(value)

/** A plain UDP socket driven by the test: send to any address, receive one datagram at a time. */
export interface TestClient {
  readonly address: NetAddress.InetAddress
  readonly send: (to: NetAddress.InetAddress, payload: Uint8Array | string) => Effect.Effect<void, unknown>
  readonly receive: Effect.Effect<DatagramSocket.Datagram, unknown>
  readonly receiveText: Effect.Effect<string, unknown>
}

export const testClient = (
  host = "127.0.0.1",
  options?: { readonly receiveBuffer?: number }
): Effect.Effect<TestClient, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const network = yield* Network.Network
    const socket = yield* network.datagramSocket({
      bind: { address: host, port: 0 },
      receiveBuffer: { capacity: options?.receiveBuffer ?? 100_000 },
      kernelReceiveBufferSize: 4 * 1024 * 1024
    })
    const reader = yield* socket.reader
    const writer = yield* socket.writer
    const pending: Array<DatagramSocket.Datagram> = []
    let head = 0
    const receive: Effect.Effect<DatagramSocket.Datagram, unknown> = Effect.suspend(() => {
      if (head < pending.length) {
        const datagram = pending[head++]
        if (head === pending.length) {
          pending.length = 0
          head = 0
        }
        if (datagram !== undefined) return Effect.succeed(datagram)
      }
      return Effect.flatMap(reader.pull, (batch) => {
        pending.push(...batch)
        return receive
      })
    })
    return {
      address: reader.address,
      send: (to, payload) =>
        writer.write({ payload: typeof payload === "string" ? bytes(payload) : payload, address: to }),
      receive,
      receiveText: Effect.map(receive, (datagram) => text(datagram.payload))
    }
  })

export { type NetworkCase, onBothNetworks } from "@diesel/sim/vitest"
