/**
 * Simulated UDP sockets, built on `effect/socket`'s `makeFromBackingSocket` so that the receive queue,
 * batching, reader exclusivity and writer latch are effect's own; only the "native" socket is simulated.
 *
 * @internal
 */
import type { Network } from "@diesel/core"
import * as Effect from "effect/Effect"
import * as DatagramSocket from "effect/socket/DatagramSocket"
import { SimSystemError } from "./Errors.js"
import { type HostState, isLoopback, isWildcard, type World } from "./World.js"

const openError = (kind: DatagramSocket.DatagramSocketOpenError["kind"], cause: unknown) =>
  new DatagramSocket.DatagramSocketError({ reason: new DatagramSocket.DatagramSocketOpenError({ kind, cause }) })

const writeError = (kind: DatagramSocket.DatagramSocketWriteError["kind"], cause: unknown) =>
  new DatagramSocket.DatagramSocketError({ reason: new DatagramSocket.DatagramSocketWriteError({ kind, cause }) })

const maxPayload = (destination: string): number => (destination.includes(":") ? 65527 : 65507)

/** A simulated "native" socket: what `Network.openDatagram` returns, and what `make` builds on. */
export const open = (
  world: World,
  host: HostState,
  options: Network.DatagramOptions,
  resolveAddress: (name: string) => Effect.Effect<string, DatagramSocket.DatagramSocketError>,
  events: DatagramSocket.BackingEvents
): Effect.Effect<DatagramSocket.BackingSocket, DatagramSocket.DatagramSocketError> =>
  Effect.gen(function* () {
    if (!host.up) return yield* openError("Unknown", new SimSystemError("EHOSTDOWN", "bind", host.name))
    const requested = options.bind?.address
    const bound =
      requested === undefined || requested === ""
        ? options.family === "ipv6"
          ? "::"
          : "0.0.0.0"
        : requested === "localhost"
          ? "127.0.0.1"
          : requested
    if (!host.owns(bound)) {
      return yield* openError("AddressNotAvailable", new SimSystemError("EADDRNOTAVAIL", "bind", host.name, bound))
    }
    const requestedPort = options.bind?.port ?? 0
    const port = requestedPort === 0 ? host.ephemeralPort((p) => host.udp.has(p)) : requestedPort
    if (port === undefined || host.udp.has(port)) {
      return yield* openError(
        "AddressInUse",
        new SimSystemError("EADDRINUSE", "bind", host.name, `port ${requestedPort}`)
      )
    }
    const connect = options.connect
    const peer =
      connect === undefined ? undefined : { host: yield* resolveAddress(connect.address), port: connect.port }

    let open = true
    const receive = (packet: { readonly payload: Uint8Array; readonly from: { address: string; port: number } }) => {
      if (!open) return
      if (peer !== undefined && !samePeer(peer, packet.from)) return
      events.onPacket(packet.payload, packet.from.address, packet.from.port)
    }
    const unregister = () => {
      if (!open) return
      open = false
      if (host.udp.get(port)?.receive === receive) host.udp.delete(port)
      host.closers.delete(crash)
    }
    const crash = () => {
      unregister()
      events.onClose()
    }
    host.udp.set(port, { port, receive })
    host.closers.add(crash)

    const refused =
      peer === undefined
        ? undefined
        : () => {
            if (!open) return
            events.onError(
              new DatagramSocket.DatagramSocketError({
                reason: new DatagramSocket.DatagramSocketReadError({
                  kind: "ConnectionRefused",
                  cause: new SimSystemError("ECONNREFUSED", "recv", host.name)
                })
              })
            )
          }

    const sendOne = (
      payload: Uint8Array,
      destination: DatagramSocket.BackingAddress | undefined
    ): DatagramSocket.DatagramSocketError | undefined => {
      const target = destination ?? peer
      if (target === undefined) return writeError("Unknown", new Error("no destination"))
      if (!open || !host.up) return writeError("Unknown", new SimSystemError("EHOSTDOWN", "send", host.name))
      if (payload.byteLength > maxPayload(target.host)) {
        return writeError("MessageTooLarge", new SimSystemError("EMSGSIZE", "send", host.name))
      }
      const to = { address: normalizeDestination(target.host), port: target.port }
      world.send(
        world.packet({
          protocol: "udp",
          srcHost: host,
          from: { address: host.sourceFor(bound, to.address), port },
          to,
          payload: payload.slice(),
          unreachable: refused
        })
      )
      return undefined
    }

    const backing: DatagramSocket.BackingSocket = {
      address: { host: bound, port },
      peer,
      connected: peer !== undefined,
      send: (payload, destination, done) => done(sendOne(payload, destination)),
      sendMany: (payloads, destinations, done) => {
        for (let i = 0; i < payloads.length; i++) {
          const error = sendOne(payloads[i] as Uint8Array, destinations[i])
          if (error !== undefined) return done(error, i)
        }
        done()
      },
      joinMulticast: () =>
        Effect.fail(
          new DatagramSocket.DatagramSocketError({
            reason: new DatagramSocket.DatagramSocketUnsupportedError({
              capability: "multicast",
              runtime: "simulated network"
            })
          })
        ),
      close: unregister
    }
    return backing
  })

export const make = (
  world: World,
  host: HostState,
  options: Network.DatagramOptions,
  resolveAddress: (name: string) => Effect.Effect<string, DatagramSocket.DatagramSocketError>
): Effect.Effect<DatagramSocket.DatagramSocket> =>
  DatagramSocket.makeFromBackingSocket((events) => open(world, host, options, resolveAddress, events), {
    receiveBuffer: options.receiveBuffer,
    onError: options.onError
  })

const samePeer = (peer: { host: string; port: number }, from: { address: string; port: number }): boolean =>
  peer.port === from.port &&
  (peer.host === from.address || (isLoopback(peer.host) && isLoopback(from.address)) || isWildcard(peer.host))

const normalizeDestination = (address: string): string => {
  // IPv4-mapped IPv6 (::ffff:10.0.0.1) reaches the IPv4 host
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  return mapped?.[1] ?? address
}
