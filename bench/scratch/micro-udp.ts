// scratch micro benchmark (not committed): diesel demux+conversation cost per datagram on an in-memory socket
import { Connection, Network } from "@diesel/core"
import { UDPConnection } from "@diesel/udp"
import * as Effect from "effect/Effect"
import * as NetAddress from "effect/net/NetAddress"
import * as DatagramSocket from "effect/socket/DatagramSocket"

const PEERS = 8
const BATCH = Number(process.argv[3] ?? 16)
const TOTAL = 2_000_000
const payload = new Uint8Array(64)
let produced = 0
let written = 0
let done: (() => void) | undefined
const addresses = Array.from({ length: PEERS }, (_, i) => NetAddress.inetAddressFromIpStringUnsafe("127.0.0.1", 10000 + i))
const makeBatch = () => {
  const batch: Array<DatagramSocket.Datagram & { host: string; port: number }> = []
  for (let i = 0; i < BATCH; i++) {
    const peer = produced++ % PEERS
    const address = addresses[peer]!
    batch.push({ payload, address, host: "127.0.0.1", port: 10000 + peer })
  }
  return batch as unknown as readonly [DatagramSocket.Datagram, ...Array<DatagramSocket.Datagram>]
}
const mode = process.argv[2] ?? "diesel"
const reader: DatagramSocket.Reader = {
  pull: Effect.suspend(() => (produced >= TOTAL ? Effect.never : Effect.yieldNow.pipe(Effect.as(makeBatch())))),
  address: NetAddress.inetAddressFromIpStringUnsafe("127.0.0.1", 9),
  dropped: () => 0,
  joinMulticast: () => Effect.void
}
const writer: DatagramSocket.Writer = {
  write: () => Effect.sync(() => { if (++written === TOTAL) done?.() }),
  writeAll: () => Effect.void
}
const socket = DatagramSocket.make({ reader: Effect.succeed(reader), writer: Effect.succeed(writer) })
const net: Network.NetworkService = { ...Network.node, datagramSocket: () => Effect.succeed(socket) }
const start = process.cpuUsage()
const t0 = performance.now()
const finished = new Promise<void>((r) => { done = r })
const program = mode === "diesel"
  ? Effect.scoped(Effect.gen(function* () {
      yield* UDPConnection.make({ port: 0, handler: UDPConnection.forEach((d) => Connection.send(d.payload)) })
      yield* Effect.promise(() => finished)
    })).pipe(Network.provide(net))
  : Effect.gen(function* () {
      while (written < TOTAL) for (const d of yield* reader.pull) yield* writer.write({ payload: d.payload, address: d })
    })
await Effect.runPromise(program)
const cpu = process.cpuUsage(start)
console.log(mode, `${((cpu.user + cpu.system) / TOTAL).toFixed(3)} µs CPU per datagram, ${(TOTAL / ((performance.now() - t0) / 1000) / 1e6).toFixed(2)} M/s`)
