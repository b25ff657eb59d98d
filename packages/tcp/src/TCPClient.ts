/**
 * TCP clients: diesel's `Client` and `@call`.
 *
 * `connect` opens a connection in the current scope (closed gracefully with it). `call` runs protocol
 * code with that connection as the current one, so `send`/`receive`/`until` talk to the server, even
 * from inside a TCP or UDP conversation; the outer connection is current again afterwards.
 *
 * Reconnection is left to the caller: wrap the scoped use of a connection in `Effect.retry`, and every
 * attempt dials again.
 *
 * @example
 * ```ts
 * import { Connection, Receive } from "@diesel/core"
 * import { TCPClient } from "@diesel/tcp"
 * import { Effect, Schedule } from "effect"
 *
 * const ping = Effect.gen(function* () {
 *   const client = yield* TCPClient.connect({ host: "127.0.0.1", port: 7000, timeout: "2 seconds" })
 *   return yield* TCPClient.call(client, Effect.andThen(Connection.send("PING\r\n"), Receive.untilEol()))
 * }).pipe(
 *   Effect.scoped,
 *   // reconnect: each retry dials a new connection
 *   Effect.retry(Schedule.exponential("100 millis").pipe(Schedule.jittered, Schedule.upTo({ times: 5 })))
 * )
 * ```
 *
 * @since 0.1.0
 */
import { Connection, Network } from "@diesel/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as NetAddress from "effect/net/NetAddress"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as TCPConnection from "./TCPConnection.js"
import { ConnectError, type UpgradeError } from "./TCPError.js"

/**
 * Options of `connect`.
 *
 * @since 0.1.0
 */
export interface ConnectOptions {
  /** Host name or IP literal. */
  readonly host: string
  readonly port: number
  /** Fail with `ConnectError` (`timedOut: true`) when the connection (and TLS handshake) is not up in time. */
  readonly timeout?: Duration.Input | undefined
  /**
   * TLS: `true` for the defaults, or options. The server certificate is verified (against `ca`, or the
   * system roots) and SNI is sent (`servername`, default: the host when it is a name) unless
   * `rejectUnauthorized: false`.
   */
  readonly tls?: boolean | Network.TlsClientOptions | undefined
  readonly localAddress?: string | undefined
  readonly family?: "ipv4" | "ipv6" | undefined
  /** Disable Nagle's algorithm (default `true`). */
  readonly noDelay?: boolean | undefined
  /** Metric attribute `client` (default: none). */
  readonly name?: string | undefined
}

const isIpLiteral = (host: string): boolean => Result.isSuccess(NetAddress.ipFromString(host))

/**
 * Connect to `host:port`. The connection closes (gracefully) when the scope closes.
 *
 * A host name is resolved through `Network.lookup` (so a resolver layer such as `NetDns.layerNetwork`
 * answers it, not `getaddrinfo`), and each address is tried in turn, IPv4 first, until one connects;
 * `timeout` applies to each attempt (without one, an address that never answers holds up the next). TLS still sends and verifies the host name (SNI), not the address.
 *
 * @since 0.1.0
 */
export const connect = (
  options: ConnectOptions
): Effect.Effect<TCPConnection.TCPConnection, ConnectError, Scope.Scope> =>
  Effect.gen(function* () {
    const net = yield* Network.Network
    const tls = options.tls === true ? {} : options.tls === false ? undefined : options.tls
    const literal = isIpLiteral(options.host)
    const servername = literal ? undefined : options.host
    const connectError = (cause: unknown, timedOut = false) =>
      new ConnectError({ host: options.host, port: options.port, tls: tls !== undefined, timedOut, cause })
    const addresses = literal
      ? [options.host]
      : (yield* Effect.mapError(
          net.lookup(options.host, {
            family: options.family === "ipv6" ? "IPv6" : options.family === "ipv4" ? "IPv4" : undefined
          }),
          (cause) => connectError(cause)
        ))
          // IPv4 first, as UDPConnection and the DNS resolver order them (stable within each family)
          .toSorted((a, b) => Number(NetAddress.isIpv6Address(a)) - Number(NetAddress.isIpv6Address(b)))
          .map(NetAddress.formatIp)
    const attempt = (address: string) =>
      Effect.gen(function* () {
        const socket = yield* net.connect({
          host: address,
          port: options.port,
          timeout: options.timeout,
          localAddress: options.localAddress,
          family: options.family,
          noDelay: options.noDelay,
          allowHalfOpen: tls === undefined,
          tls: tls === undefined ? undefined : { ...tls, servername: tls.servername ?? servername }
        })
        const remote = NetAddress.inetAddressFromIpString(address, options.port)
        return yield* TCPConnection.make({
          socket,
          role: "client",
          remoteAddress: Result.isSuccess(remote) ? remote.success : undefined,
          servername,
          metrics: options.name === undefined ? { role: "client" } : { role: "client", client: options.name }
        }).pipe(
          Effect.mapError((error) => {
            const reason = error.reason
            return connectError(
              "cause" in reason ? reason.cause : reason,
              reason._tag === "SocketOpenError" && reason.kind === "Timeout"
            )
          })
        )
      })
    let failure: ConnectError = connectError("no address")
    for (const address of addresses) {
      const connected = yield* Effect.result(attempt(address))
      if (Result.isSuccess(connected)) return connected.success
      failure = connected.failure
    }
    return yield* failure
  })

/**
 * Run `effect` with `client` as the current connection (diesel's `@call`): `send`, `receive`, `until`...
 * in `effect` talk to the client's server, and the outer connection (of a TCP or UDP conversation, or
 * another client call) is current again afterwards.
 *
 * @example
 * ```ts
 * import { Connection, Receive } from "@diesel/core"
 * import { TCPClient, TCPConnection } from "@diesel/tcp"
 * import { Effect } from "effect"
 *
 * const get = (client: TCPConnection.TCPConnection, key: string) =>
 *   TCPClient.call(client, Effect.andThen(Connection.send(`GET ${key}\r\n`), Receive.untilEol()))
 * ```
 *
 * @since 0.1.0
 */
export const call: {
  (client: Connection.Connection): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(client: Connection.Connection, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(client: Connection.Connection, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Connection.withConnection(effect, client)
)

/**
 * Upgrade a live client connection to TLS (STARTTLS), verifying the server certificate and sending SNI
 * (the host connected to, unless `servername` says otherwise) by default.
 *
 * @since 0.1.0
 */
export const startTls = (
  client: TCPConnection.TCPConnection,
  options?: TCPConnection.UpgradeOptions
): Effect.Effect<void, UpgradeError> => client.upgrade(options)
