import { Connection, Network, Receive } from "@diesel/core"
import { TCPClient, TCPService } from "@diesel/tcp"
import { UDPConnection } from "@diesel/udp"
import * as PlatformDns from "@effect/platform-node/NodeDns"
import { expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Dns from "effect/net/Dns"
import * as NetAddress from "effect/net/NetAddress"
import { NetDns, Resolver } from "../../src/dns/index.js"
import * as KnotServer from "../harness/KnotServer.js"

const ResolverOnKnot = Layer.unwrap(
  KnotServer.Knot.useSync((knot) => Resolver.layer({ nameservers: [knot.address], timeout: "2 seconds" }))
)

const Stack = Layer.mergeAll(NetDns.layer, NetDns.layerNetwork).pipe(
  Layer.provideMerge(ResolverOnKnot),
  Layer.provideMerge(KnotServer.layer)
)

/** effect's own Node implementation (c-ares), on the same knot. */
const platformDns = KnotServer.Knot.use((knot) =>
  Effect.scoped(PlatformDns.make({ nameServers: [knot.address], timeout: "2 seconds", tries: 1 }))
).pipe(Effect.orDie)

const formatted = (records: ReadonlyArray<Dns.DnsRecord>) => records.map(Dns.formatRecord).sort()

layer(Stack, { excludeTestServices: true, timeout: "30 seconds" })("NetDns", (it) => {
  it.effect("implements effect/net's Dns: the same records as effect's Node implementation", () =>
    Effect.gen(function* () {
      const ours = yield* Dns.Dns
      const theirs = yield* platformDns
      const cases: ReadonlyArray<readonly [string, Dns.RecordType]> = [
        ["www.example.test", "A"],
        ["www.example.test", "AAAA"],
        ["alias3.example.test", "A"],
        ["alias.example.test", "CNAME"],
        ["example.test", "MX"],
        ["example.test", "NS"],
        ["example.test", "SOA"],
        ["example.test", "TXT"],
        ["longtxt.example.test", "TXT"],
        ["example.test", "CAA"],
        ["_sip._tcp.example.test", "SRV"],
        ["2.0.0.127.in-addr.arpa", "PTR"],
        ["big.example.test", "A"]
      ]
      for (const [name, type] of cases) {
        expect(formatted(yield* ours.resolve(name, type)), `${name} ${type}`).toEqual(
          formatted(yield* theirs.resolve(name, type))
        )
      }
      expect((yield* ours.reverse("127.0.0.2")).map(String)).toEqual(["ns2.example.test."])
      const addresses = yield* ours.lookup("www.example.test", { family: "IPv4" })
      expect(addresses.map(NetAddress.formatIp).sort()).toEqual(["10.0.0.1", "10.0.0.2"])
    })
  )

  it.effect("errors are Dns.DnsError with the reason node's implementation gives", () =>
    Effect.gen(function* () {
      const ours = yield* Dns.Dns
      const theirs = yield* platformDns
      for (const [name, type] of [
        ["nosuch.example.test", "A"],
        ["www.example.test", "MX"],
        ["www.example.com", "A"]
      ] as const) {
        const a = yield* Effect.flip(ours.resolve(name, type))
        const b = yield* Effect.flip(theirs.resolve(name, type))
        expect(a.reason, `${name} ${type}`).toBe(b.reason)
      }
      expect((yield* Effect.flip(ours.resolve("x.example.test", "NAPTR"))).reason).toBe("Unsupported")
    })
  )

  it.effect("diesel's Network seam resolves through the resolver (a name only knot knows)", () =>
    Effect.gen(function* () {
      const network = yield* Network.Network
      const addresses = yield* network.lookup("mail2.example.test")
      expect(addresses.map(NetAddress.formatIp)).toEqual(["10.0.0.26"])
      const error = yield* Effect.flip(network.lookup("nosuch.example.test"))
      expect(error.reason).toBe("NotFound")
    })
  )

  it.effect("diesel's TCPClient and UDPConnection clients connect to a name only knot knows", () =>
    Effect.gen(function* () {
      // ns1.example.test is 127.0.0.1 in knot's zone, and unknown to getaddrinfo
      const echoLines = Effect.forever(Effect.flatMap(Receive.untilEol(), Connection.send))
      const tcp = yield* TCPService.make({ host: "127.0.0.1", handler: echoLines })
      const client = yield* TCPClient.connect({ host: "ns1.example.test", port: tcp.port, timeout: "5 seconds" })
      const line = yield* TCPClient.call(client, Effect.andThen(Connection.send("over tcp\r\n"), Receive.untilEol()))
      expect(new TextDecoder().decode(line)).toBe("over tcp\r\n")

      const echo = Effect.flatMap(UDPConnection.datagram, (datagram) => Connection.send(datagram.payload))
      const udp = yield* UDPConnection.make({ host: "127.0.0.1", port: 0, handler: echo })
      const reply = yield* UDPConnection.connect(
        { host: "ns1.example.test", port: udp.localAddress.port },
        Effect.andThen(Connection.send("over udp"), UDPConnection.datagram)
      )
      expect(new TextDecoder().decode(reply.payload)).toBe("over udp")
      expect(NetAddress.formatIp(reply.address.address)).toBe("127.0.0.1")
    }).pipe(Effect.scoped)
  )

  it.effect("without the resolver, the same name does not resolve (getaddrinfo does not know it)", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        TCPClient.connect({ host: "ns1.example.test", port: 9 }).pipe(
          Effect.scoped,
          Effect.provideService(Network.Network, Network.node)
        )
      )
      expect(error._tag).toBe("ConnectError")
    })
  )
})
