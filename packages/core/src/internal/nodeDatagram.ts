/**
 * `Network.node.openDatagram`: a `node:dgram` socket behind `effect/socket`'s backing-socket contract, with
 * nothing in between. `@effect/platform-node` has the same adapter inside `NodeDatagramSocket` but does not
 * export it (only the fiber-level `DatagramSocket` built on it), so this is the one place diesel opens a
 * `node:dgram` socket itself.
 *
 * @internal
 */
import * as Dgram from "node:dgram"
import * as Net from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as DatagramSocket from "effect/socket/DatagramSocket"
import type { DatagramOptions } from "../Network.js"

const errorCode = (error: unknown): unknown =>
  typeof error === "object" && error !== null ? (error as NodeJS.ErrnoException).code : undefined

const openError = (
  error: unknown,
  kind: DatagramSocket.DatagramSocketOpenError["kind"] = openKind(error)
): DatagramSocket.DatagramSocketError =>
  new DatagramSocket.DatagramSocketError({ reason: new DatagramSocket.DatagramSocketOpenError({ kind, cause: error }) })

const openKind = (error: unknown): DatagramSocket.DatagramSocketOpenError["kind"] => {
  switch (errorCode(error)) {
    case "EADDRINUSE":
      return "AddressInUse"
    case "EADDRNOTAVAIL":
      return "AddressNotAvailable"
    case "EACCES":
    case "EPERM":
      return "PermissionDenied"
    default:
      return "Unknown"
  }
}

const ioKind = (error: unknown): DatagramSocket.IoErrorKind => {
  switch (errorCode(error)) {
    case "EMSGSIZE":
      return "MessageTooLarge"
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EHOSTDOWN":
    case "ENETDOWN":
      return "Unreachable"
    case "ECONNREFUSED":
      return "ConnectionRefused"
    case "EACCES":
    case "EPERM":
      return "PermissionDenied"
    default:
      return "Unknown"
  }
}

const writeError = (error: unknown): DatagramSocket.DatagramSocketError =>
  new DatagramSocket.DatagramSocketError({
    reason:
      errorCode(error) === "ERR_SOCKET_DGRAM_NOT_RUNNING"
        ? new DatagramSocket.DatagramSocketClosedError()
        : new DatagramSocket.DatagramSocketWriteError({ kind: ioKind(error), cause: error })
  })

const readError = (error: unknown): DatagramSocket.DatagramSocketError =>
  new DatagramSocket.DatagramSocketError({
    reason: new DatagramSocket.DatagramSocketReadError({ kind: ioKind(error), cause: error })
  })

// Every address reaching the socket is an IP literal (checked when it opens), so answer at once: Node's
// default `lookup` adds a `process.nextTick` to each send.
const immediateLookup = (
  hostname: string,
  family: unknown,
  callback: (error: NodeJS.ErrnoException | null, address: string, family: number) => void
) => callback(null, hostname, family === 6 ? 6 : 4)

const notLiteral = (address: string) =>
  openError(
    new Error(`${address} is not an IP address: openDatagram takes literals (resolve names with Network.lookup)`),
    "AddressNotAvailable"
  )

/** Opens, binds and (with `connect`) connects a socket; it closes with the scope. */
export const open = (
  options: DatagramOptions,
  events: DatagramSocket.BackingEvents
): Effect.Effect<DatagramSocket.BackingSocket, DatagramSocket.DatagramSocketError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<DatagramSocket.BackingSocket, DatagramSocket.DatagramSocketError>((resume) => {
      const bindAddress = options.bind?.address
      const remote = options.connect
      for (const address of [bindAddress, remote?.address]) {
        if (address !== undefined && address !== "" && Net.isIP(address) === 0)
          return resume(Effect.fail(notLiteral(address)))
      }
      const family =
        options.family ??
        (Net.isIP(bindAddress ?? "") === 6 || (bindAddress === undefined && Net.isIP(remote?.address ?? "") === 6)
          ? "ipv6"
          : "ipv4")
      let socket: Dgram.Socket
      try {
        socket = Dgram.createSocket({
          type: family === "ipv6" ? "udp6" : "udp4",
          reuseAddr: options.reuseAddress,
          reusePort: options.reusePort,
          ipv6Only: options.ipv6Only,
          lookup: immediateLookup as unknown as Dgram.SocketOptions["lookup"]
        })
      } catch (error) {
        return resume(Effect.fail(openError(error)))
      }
      let state: "opening" | "open" | "closed" = "opening"
      const close = () => {
        if (state === "closed") return
        state = "closed"
        try {
          socket.close()
        } catch {
          // already closed underneath
        }
      }
      const fail = (error: DatagramSocket.DatagramSocketError) => {
        close()
        resume(Effect.fail(error))
      }
      socket.on("message", (payload, info) => events.onPacket(payload, info.address, info.port))
      // Node throws without an `'error'` listener. Once open, errors have no write left to fail: ICMP
      // reports on a connected socket, for example; the socket stays usable.
      socket.on("error", (error) => {
        if (state === "opening") fail(openError(error))
        else if (state === "open") events.onError(readError(error))
      })
      socket.on("close", () => {
        if (state === "open") {
          state = "closed"
          events.onClose()
        }
      })
      const opened = (connected: boolean) => {
        if (state !== "opening") return
        state = "open"
        const bound = socket.address()
        const done = (callback: (error?: DatagramSocket.DatagramSocketError) => void) => (error: Error | null) =>
          callback(error == null ? undefined : writeError(error))
        const send: DatagramSocket.BackingSocket["send"] = (payload, destination, callback) => {
          try {
            if (destination === undefined) socket.send(payload, done(callback))
            else socket.send(payload, destination.port, destination.host, done(callback))
          } catch (error) {
            callback(writeError(error))
          }
        }
        resume(
          Effect.succeed({
            address: { host: bound.address, port: bound.port },
            peer: remote === undefined ? undefined : { host: remote.address, port: remote.port },
            connected,
            send,
            sendMany: (payloads, destinations, callback) => {
              let remaining = payloads.length
              let failure: DatagramSocket.DatagramSocketError | undefined
              let failedAt: number | undefined
              for (let i = 0; i < payloads.length; i++) {
                send(payloads[i] as Uint8Array, destinations[i], (error) => {
                  if (error !== undefined && failure === undefined) {
                    failure = error
                    failedAt = i
                  }
                  if (--remaining === 0) callback(failure, failedAt)
                })
              }
            },
            joinMulticast: () =>
              Effect.fail(
                new DatagramSocket.DatagramSocketError({
                  reason: new DatagramSocket.DatagramSocketUnsupportedError({
                    capability: "multicast",
                    runtime: "Network.openDatagram"
                  })
                })
              ),
            close
          })
        )
      }
      try {
        socket.bind(
          { address: bindAddress || (family === "ipv6" ? "::" : "0.0.0.0"), port: options.bind?.port ?? 0 },
          () => {
            if (state !== "opening") return
            try {
              if (options.kernelReceiveBufferSize !== undefined)
                socket.setRecvBufferSize(options.kernelReceiveBufferSize)
              if (options.kernelSendBufferSize !== undefined) socket.setSendBufferSize(options.kernelSendBufferSize)
            } catch (error) {
              return fail(openError(error))
            }
            if (remote === undefined) return opened(false)
            try {
              socket.connect(remote.port, remote.address, (error?: Error) =>
                error ? fail(openError(error)) : opened(true)
              )
            } catch (error) {
              fail(openError(error))
            }
          }
        )
      } catch (error) {
        fail(openError(error))
      }
      // Interrupted while opening.
      return Effect.sync(close)
    }),
    (backing) => Effect.sync(backing.close)
  )
