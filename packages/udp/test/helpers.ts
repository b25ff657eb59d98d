import { Network } from "@diesel/core"
import { SimNetwork } from "@diesel/sim"
import { describe, it } from "@effect/vitest"
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

/** A test case body, as `it.live` takes it. */
type Case = () => Effect.Effect<unknown, unknown, Scope.Scope>

/** Registers a case (`it.live` or `it.effect`); the body runs on the network of the enclosing `onBothNetworks`. */
export type NetworkCase = (name: string, self: Case, timeout?: number) => void

/**
 * Registers `cases` twice, once on the Node network (real sockets) and once on a fresh simulated network
 * (perfect links, seed 1): the behaviour they check is defined for both. The case's scope closes inside the
 * network, so its servers and clients shut down while the simulation still delivers their FINs.
 */
export const onBothNetworks = (
  title: string,
  cases: (live: NetworkCase, effect: NetworkCase, network: "node" | "sim") => void
): void => {
  for (const { name, provide } of SimNetwork.providers({ seed: 1 })) {
    describe(`${title} (${name})`, () => {
      cases(
        (caseName, self, timeout) => it.live(caseName, () => provide(Effect.scoped(self())), timeout),
        (caseName, self, timeout) => it.effect(caseName, () => provide(Effect.scoped(self())), timeout),
        name
      )
    })
  }
}
