import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import { Network } from "../src/index.js"

const decoder = new TextDecoder()

describe("Network (Node implementation)", () => {
  it.live("lookup resolves IP literals without the resolver, and localhost", () =>
    Effect.gen(function* () {
      const net = yield* Network.Network
      const [literal] = yield* net.lookup("::1")
      expect(literal?._tag).toBe("Ipv6Address")
      const local = yield* net.lookup("localhost", { family: "IPv4" })
      expect(local.length).toBeGreaterThan(0)
    })
  )

  it.live("lookup of an unknown name is a typed DnsError", () =>
    Effect.gen(function* () {
      const net = yield* Network.Network
      const error = yield* Effect.flip(net.lookup("no-such-host.invalid"))
      expect(error._tag).toBe("DnsError")
      expect(error.hostname).toBe("no-such-host.invalid")
    })
  )

  it.live("UDP: bind, send and receive through the seam", () =>
    Effect.gen(function* () {
      const net = yield* Network.Network
      const server = yield* net.datagramSocket({ bind: { address: "127.0.0.1", port: 0 } })
      const reader = yield* server.reader
      const client = yield* net.datagramSocket({ bind: { address: "127.0.0.1", port: 0 } })
      yield* client.reader
      const writer = yield* client.writer
      yield* writer.write({ payload: "ping", address: reader.address })
      const [datagram] = yield* reader.pull
      expect(decoder.decode(datagram?.payload)).toBe("ping")
    })
  )

  it.live("TCP: listen and connect through the seam", () =>
    Effect.gen(function* () {
      const net = yield* Network.Network
      const server = yield* net.listen({ host: "127.0.0.1", port: 0 })
      yield* Effect.forkScoped(
        server.run((socket) =>
          Effect.gen(function* () {
            const reader = yield* socket.reader
            const writer = yield* socket.writer
            const chunks = yield* reader.pull
            yield* writer.writeAll(chunks)
          }).pipe(Effect.scoped, Effect.ignore)
        )
      )
      const address = server.address
      if (address._tag === "UnixPathAddress") throw new Error("expected an inet address")
      const socket = yield* net.connect({ host: NetAddress.formatHost(address), port: address.port })
      const reader = yield* socket.reader
      const writer = yield* socket.writer
      yield* writer.write("echo me")
      const fiber = yield* Effect.forkChild(reader.pull)
      const chunks = yield* Fiber.join(fiber)
      expect(chunks.map((c) => (typeof c === "string" ? c : decoder.decode(c))).join("")).toBe("echo me")
    })
  )

  it.live("a connect timeout is a typed open error", () =>
    Effect.gen(function* () {
      const net = yield* Network.Network
      // nothing listens on port 9 of 127.0.0.1: refused, a typed SocketError
      const socket = yield* net.connect({ host: "127.0.0.1", port: 9, timeout: "2 seconds" })
      const error = yield* Effect.flip(socket.reader)
      expect(error._tag).toBe("SocketError")
    })
  )
})
