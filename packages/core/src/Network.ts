/**
 * The one seam between diesel's transports and the operating system.
 *
 * `@diesel/udp` and `@diesel/tcp` bind, listen, connect and resolve names only through the `Network`
 * reference. Its default is the Node implementation (`node:dgram`, `node:net`, `node:tls`, `node:dns`
 * through `@effect/platform-node`), so nothing needs to be provided in production; a test provides a
 * simulated network instead (`Effect.provideService(Network.Network, simulated)`) and the transports
 * run unchanged on it.
 *
 * The seam speaks `effect/socket`'s portable interfaces (`DatagramSocket`, `SocketServer`, `Socket`),
 * with option types of its own so that an implementation need not be Node.
 *
 * @since 0.1.0
 */

import * as NodeDnsLookup from "node:dns"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Dns from "effect/net/Dns"
import * as NetAddress from "effect/net/NetAddress"
import type * as Scope from "effect/Scope"
import * as DatagramSocket from "effect/socket/DatagramSocket"
import type * as Socket from "effect/socket/Socket"
import type * as SocketServer from "effect/socket/SocketServer"
import * as NodeDatagram from "./internal/nodeDatagram.js"

/**
 * A host and port. `address` is an IP literal or a name; names are resolved through `Network.lookup`.
 *
 * @since 0.1.0
 */
export interface Endpoint {
  readonly address: string
  readonly port: number
}

/**
 * Options for a UDP socket.
 *
 * @since 0.1.0
 */
export interface DatagramOptions {
  readonly family?: "ipv4" | "ipv6" | undefined
  /** Local address and port; port 0 (the default) picks a free one. */
  readonly bind?: { readonly address?: string | undefined; readonly port?: number | undefined } | undefined
  /** connect(2) the socket: the kernel then drops datagrams from any other source and reports ICMP errors. */
  readonly connect?: Endpoint | undefined
  readonly reuseAddress?: boolean | undefined
  /** SO_REUSEPORT: several processes share one port, the kernel hashes peers across them. */
  readonly reusePort?: boolean | undefined
  readonly ipv6Only?: boolean | undefined
  readonly kernelReceiveBufferSize?: number | undefined
  readonly kernelSendBufferSize?: number | undefined
  /** The socket's own queue between the kernel and `pull` (see `effect/socket/DatagramSocket`). */
  readonly receiveBuffer?: DatagramSocket.ReceiveBufferOptions | undefined
  /** Called with socket-level errors that no pending operation can receive (ICMP errors, for example). */
  readonly onError?: ((error: DatagramSocket.DatagramSocketError) => void) | undefined
}

/**
 * TLS material for a server.
 *
 * @since 0.1.0
 */
export interface TlsServerOptions {
  readonly key: string | Uint8Array
  readonly cert: string | Uint8Array
  readonly ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array> | undefined
  readonly requestCert?: boolean | undefined
  readonly rejectUnauthorized?: boolean | undefined
  readonly alpnProtocols?: ReadonlyArray<string> | undefined
}

/**
 * TLS for a client. Certificate verification is on unless `rejectUnauthorized` is `false`; `servername`
 * (SNI and the name checked against the certificate) defaults to the host connected to.
 *
 * @since 0.1.0
 */
export interface TlsClientOptions {
  readonly servername?: string | undefined
  readonly ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array> | undefined
  readonly cert?: string | Uint8Array | undefined
  readonly key?: string | Uint8Array | undefined
  readonly rejectUnauthorized?: boolean | undefined
  readonly alpnProtocols?: ReadonlyArray<string> | undefined
}

/**
 * Options for a TCP listener.
 *
 * @since 0.1.0
 */
export interface ListenOptions {
  /** Address to listen on; default: every interface (`::`, IPv4 mapped). */
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly backlog?: number | undefined
  readonly ipv6Only?: boolean | undefined
  readonly reusePort?: boolean | undefined
  /** Disable Nagle's algorithm on accepted sockets (default `true`). */
  readonly noDelay?: boolean | undefined
  /**
   * Keep the write side open after the peer half-closes (default `false`: the OS socket is ended when the
   * peer's FIN is read). Transports that support half-close set it.
   */
  readonly allowHalfOpen?: boolean | undefined
  readonly tls?: TlsServerOptions | undefined
}

/**
 * Options for a TCP connection.
 *
 * @since 0.1.0
 */
export interface ConnectOptions {
  readonly host: string
  readonly port: number
  readonly localAddress?: string | undefined
  readonly family?: "ipv4" | "ipv6" | undefined
  /** Fail with a `SocketOpenError` of kind `Timeout` when the connection is not up in time. */
  readonly timeout?: Duration.Input | undefined
  /** Disable Nagle's algorithm (default `true`). */
  readonly noDelay?: boolean | undefined
  /** Keep the write side open after the peer half-closes (default `false`). */
  readonly allowHalfOpen?: boolean | undefined
  readonly tls?: TlsClientOptions | undefined
}

/**
 * The two ends of an accepted TCP connection, for networks other than Node's (whose handlers read them from
 * the `NetSocket` of `@effect/platform-node`): provided to the handler that `listen`'s `run` starts for it.
 *
 * @since 0.1.0
 */
export class AcceptedEnds extends Context.Service<
  AcceptedEnds,
  { readonly local: NetAddress.SocketAddress; readonly remote: NetAddress.SocketAddress }
>()("@diesel/core/Network/AcceptedEnds") {}

/**
 * What a transport needs from the operating system.
 *
 * @since 0.1.0
 */
export interface NetworkService {
  /** A UDP socket; it opens (binds) when its reader is acquired, as `effect/socket` sockets do. */
  readonly datagramSocket: (options: DatagramOptions) => Effect.Effect<DatagramSocket.DatagramSocket>
  /**
   * A UDP socket at the level of callbacks, `effect/socket`'s backing-socket contract: datagrams reach
   * `events.onPacket` as they arrive and `send` hands one to the OS at once, with no fiber in between. For
   * clients that exchange a datagram per request at high rates (the DNS resolver), where a reader and a
   * writer fiber per socket cost more than the work itself. Addresses are IP literals; `receiveBuffer` and
   * `onError` do not apply (`events` receives everything). Closed with the scope.
   */
  readonly openDatagram: (
    options: DatagramOptions,
    events: DatagramSocket.BackingEvents
  ) => Effect.Effect<DatagramSocket.BackingSocket, DatagramSocket.DatagramSocketError, Scope.Scope>
  /** A listening TCP server, closed with the scope. */
  readonly listen: (
    options: ListenOptions
  ) => Effect.Effect<SocketServer.SocketServer["Service"], SocketServer.SocketServerError, Scope.Scope>
  /** A TCP (or TLS) connection; it connects when its reader is acquired. */
  readonly connect: (options: ConnectOptions) => Effect.Effect<Socket.Socket>
  /** Resolve a host name to its addresses, without blocking the event loop on the libuv thread pool. */
  readonly lookup: (
    host: string,
    options?: { readonly family?: "IPv4" | "IPv6" | undefined }
  ) => Effect.Effect<ReadonlyArray<NetAddress.IpAddress>, Dns.DnsError>
}

const toBuffer = (value: string | Uint8Array): Buffer =>
  typeof value === "string" ? Buffer.from(value) : Buffer.from(value)

const toBuffers = (
  value: string | Uint8Array | ReadonlyArray<string | Uint8Array> | undefined
): Array<Buffer> | undefined =>
  value === undefined
    ? undefined
    : typeof value === "string" || value instanceof Uint8Array
      ? [toBuffer(value)]
      : value.map(toBuffer)

const dnsReason = (code: string | undefined): Dns.DnsErrorReason => {
  switch (code) {
    case "ENOTFOUND":
    case "ENODATA":
      return "NotFound"
    case "ETIMEOUT":
      return "Timeout"
    case "EAI_AGAIN":
      return "Temporary"
    case "EREFUSED":
      return "Refused"
    case "ESERVFAIL":
      return "ServerFailure"
    case "EBADNAME":
      return "BadName"
    default:
      return "Unknown"
  }
}

/**
 * The Node implementation: `node:dgram`, `node:net`, `node:tls` through `@effect/platform-node`, and the OS
 * resolver for names that are not IP literals.
 *
 * @since 0.1.0
 */
export const node: NetworkService = {
  // On diesel's own node:dgram adapter: effect's NodeDatagramSocket ignores SO_RCVBUF/SO_SNDBUF, and a server
  // that cannot ask for a larger kernel buffer loses bursts a cold server could have read.
  datagramSocket: (options) =>
    DatagramSocket.makeFromBackingSocket((events) => NodeDatagram.open(options, events), {
      receiveBuffer: options.receiveBuffer,
      onError: options.onError
    }),
  openDatagram: NodeDatagram.open,
  listen: (options) => {
    const listen = {
      host: options.host,
      port: options.port ?? 0,
      backlog: options.backlog ?? 511,
      ipv6Only: options.ipv6Only,
      reusePort: options.reusePort,
      noDelay: options.noDelay ?? true,
      allowHalfOpen: options.allowHalfOpen ?? false
    }
    const tls = options.tls
    return tls === undefined
      ? NodeSocketServer.make(listen)
      : NodeSocketServer.makeTls({
          ...listen,
          key: toBuffer(tls.key),
          cert: toBuffer(tls.cert),
          ca: toBuffers(tls.ca),
          requestCert: tls.requestCert,
          rejectUnauthorized: tls.rejectUnauthorized,
          ALPNProtocols: tls.alpnProtocols === undefined ? undefined : [...tls.alpnProtocols]
        })
  },
  connect: (options) => {
    const base = {
      host: options.host,
      port: options.port,
      localAddress: options.localAddress,
      family: options.family === "ipv6" ? 6 : options.family === "ipv4" ? 4 : undefined,
      noDelay: options.noDelay ?? true,
      allowHalfOpen: options.allowHalfOpen ?? false,
      openTimeout: options.timeout
    }
    const tls = options.tls
    return tls === undefined
      ? NodeSocket.makeNet(base)
      : NodeSocket.makeTls({
          ...base,
          servername:
            tls.servername ?? (NetAddress.ipFromString(options.host)._tag === "Success" ? undefined : options.host),
          ca: toBuffers(tls.ca),
          cert: tls.cert === undefined ? undefined : toBuffer(tls.cert),
          key: tls.key === undefined ? undefined : toBuffer(tls.key),
          rejectUnauthorized: tls.rejectUnauthorized ?? true,
          ALPNProtocols: tls.alpnProtocols === undefined ? undefined : [...tls.alpnProtocols]
        })
  },
  lookup: (host, options) => {
    const literal = NetAddress.ipFromString(host)
    if (literal._tag === "Success") return Effect.succeed([literal.success])
    return Effect.callback<ReadonlyArray<NetAddress.IpAddress>, Dns.DnsError>((resume) => {
      NodeDnsLookup.lookup(
        host,
        { all: true, family: options?.family === "IPv4" ? 4 : options?.family === "IPv6" ? 6 : 0 },
        (error, addresses) => {
          if (error) {
            const reason = dnsReason(error.code)
            resume(
              Effect.fail(
                new Dns.DnsError({
                  reason,
                  method: "lookup",
                  hostname: host,
                  cause: error
                })
              )
            )
            return
          }
          const out: Array<NetAddress.IpAddress> = []
          for (const entry of addresses) {
            const parsed = NetAddress.ipFromString(entry.address)
            if (parsed._tag === "Success") out.push(parsed.success)
          }
          resume(Effect.succeed(out))
        }
      )
    })
  }
}

/**
 * The network in use by the current fiber. Defaults to `node`.
 *
 * @since 0.1.0
 */
export const Network = Context.Reference<NetworkService>("@diesel/core/Network", { defaultValue: () => node })

/**
 * Run `effect` on another network implementation (a simulated one, in tests).
 *
 * @since 0.1.0
 */
export const provide: {
  (network: NetworkService): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(effect: Effect.Effect<A, E, R>, network: NetworkService): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(effect: Effect.Effect<A, E, R>, network: NetworkService): Effect.Effect<A, E, R> =>
    Effect.provideService(effect, Network, network)
)
