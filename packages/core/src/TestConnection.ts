/**
 * In-memory connections for testing protocol code without sockets.
 *
 * `TestConnection.stream()` is a stream connection whose peer side you drive by hand: `write` bytes in
 * chunks of your choosing, `end` the stream, read what the conversation `sent`. `TestConnection.datagrams()`
 * is the same for a datagram conversation. Both are ordinary `Connection` values: run your handler with
 * `Connection.withConnection` or `Conversation.run`.
 *
 * @example
 * ```ts
 * import { Connection, Receive, TestConnection } from "@diesel/core"
 * import { Effect } from "effect"
 *
 * const peer = TestConnection.stream()
 * peer.write("HELLO\r\n")
 * const program = Effect.gen(function* () {
 *   const line = yield* Receive.untilEol()
 *   yield* Connection.send(line)
 * }).pipe(Connection.withConnection(peer.connection))
 * // after running: peer.sentText() === "HELLO\r\n"
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as NetAddress from "effect/net/NetAddress"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import * as ByteBuffer from "./ByteBuffer.js"
import * as Connection from "./Connection.js"
import * as Mailbox from "./Mailbox.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const toBytes = (data: Uint8Array | string): Uint8Array => (typeof data === "string" ? encoder.encode(data) : data)

/** A `send` that records what is sent, and fails once the connection is closed. */
const recorder =
  (id: number, remoteAddress: NetAddress.SocketAddress, sent: Array<Uint8Array>, isClosed: () => boolean) =>
  (data: Uint8Array | string): Effect.Effect<void, Connection.SendError> =>
    isClosed()
      ? Effect.fail(
          new Connection.SendError({
            connectionId: id,
            peer: Connection.formatAddress(remoteAddress),
            message: "closed"
          })
        )
      : Effect.sync(() => {
          sent.push(toBytes(data))
        })

/**
 * The default peer address of test connections.
 *
 * @since 0.1.0
 */
export const testPeer: NetAddress.InetAddress = NetAddress.inetAddressFromIpStringUnsafe("127.0.0.2", 40000)

const testLocal: NetAddress.InetAddress = NetAddress.inetAddressFromIpStringUnsafe("127.0.0.1", 7000)

/**
 * The peer side of an in-memory stream connection.
 *
 * @since 0.1.0
 */
export interface StreamPeer {
  readonly connection: Connection.Connection
  /** Deliver a chunk to the conversation (it arrives as one read). */
  readonly write: (data: Uint8Array | string) => void
  /** End the stream: receives then fail with `ConnectionClosedError` once the buffer cannot satisfy them. */
  readonly end: (reason?: "eof" | "reset") => void
  /** Everything the conversation sent, one entry per `send`. */
  readonly sent: ReadonlyArray<Uint8Array>
  readonly sentText: () => string
  readonly isClosed: () => boolean
}

/**
 * An in-memory stream connection.
 *
 * @since 0.1.0
 */
export const stream = (options?: { readonly remoteAddress?: NetAddress.SocketAddress | undefined }): StreamPeer => {
  const buffer = ByteBuffer.make()
  const pending: Array<Uint8Array> = []
  const waiters: Array<() => void> = []
  const sent: Array<Uint8Array> = []
  let ended: Connection.InputEnded | undefined
  let closed = false
  const id = Connection.allocateId()
  const remoteAddress = options?.remoteAddress ?? testPeer
  const wake = () => {
    for (const waiter of waiters.splice(0, waiters.length)) waiter()
  }
  const fill: Effect.Effect<void, Connection.InputEnded> = Effect.suspend(() => {
    if (pending.length > 0) {
      for (const chunk of pending.splice(0, pending.length)) buffer.append(chunk)
      return Effect.void
    }
    if (ended !== undefined) return Effect.fail(ended)
    return Effect.callback<void>((resume) => {
      const waiter = () => resume(Effect.void)
      waiters.push(waiter)
      return Effect.sync(() => {
        const index = waiters.indexOf(waiter)
        if (index >= 0) waiters.splice(index, 1)
      })
    }).pipe(Effect.andThen(Effect.suspend(() => fill)))
  })
  const connection: Connection.Connection = {
    id,
    transport: "memory",
    localAddress: testLocal,
    remoteAddress,
    input: { _tag: "ByteInput", buffer, fill },
    send: recorder(id, remoteAddress, sent, () => closed),
    close: Effect.sync(() => {
      closed = true
      ended ??= new Connection.InputEnded({ reason: "closed" })
      wake()
    })
  }
  return {
    connection,
    write: (data) => {
      pending.push(toBytes(data))
      wake()
    },
    end: (reason = "eof") => {
      ended ??= new Connection.InputEnded({ reason })
      wake()
    },
    sent,
    sentText: () => sent.map((chunk) => decoder.decode(chunk)).join(""),
    isClosed: () => closed
  }
}

/**
 * The peer side of an in-memory datagram conversation.
 *
 * @since 0.1.0
 */
export interface DatagramPeer {
  readonly connection: Connection.Connection
  readonly mailbox: Mailbox.Mailbox<DatagramSocket.Datagram>
  /** Deliver a datagram to the conversation; `false` when the mailbox dropped it. */
  readonly deliver: (payload: Uint8Array | string) => boolean
  readonly sent: ReadonlyArray<Uint8Array>
  readonly isClosed: () => boolean
}

/**
 * An in-memory datagram conversation.
 *
 * @since 0.1.0
 */
export const datagrams = (options?: {
  readonly capacity?: number | undefined
  readonly policy?: Mailbox.OverflowPolicy | undefined
  readonly remoteAddress?: NetAddress.InetAddress | undefined
}): DatagramPeer => {
  const mailbox = Mailbox.make<DatagramSocket.Datagram>({
    capacity: options?.capacity ?? 1024,
    policy: options?.policy
  })
  const sent: Array<Uint8Array> = []
  const remoteAddress = options?.remoteAddress ?? testPeer
  const id = Connection.allocateId()
  let closed = false
  const connection: Connection.Connection = {
    id,
    transport: "memory-udp",
    localAddress: testLocal,
    remoteAddress,
    input: { _tag: "DatagramInput", mailbox },
    send: recorder(id, remoteAddress, sent, () => closed),
    close: Effect.sync(() => {
      closed = true
      mailbox.close()
    })
  }
  return {
    connection,
    mailbox,
    deliver: (payload) => mailbox.offerUnsafe({ payload: toBytes(payload), address: remoteAddress }),
    sent,
    isClosed: () => closed
  }
}
