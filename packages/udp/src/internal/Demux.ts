/**
 * The conversation table of one socket: conversations keyed by their peer, in least-recently-active order.
 *
 * A socket has one local address, so the remote half of the 4-tuple is the key. The key is the peer as the
 * native socket spells it (`host:port`, the last colon separating the port), built by string concatenation
 * from fields the socket already has: no address object is parsed or formatted per datagram. A socket
 * whose datagrams lack those fields (a simulated network) falls back to the formatted address.
 *
 * The least-recently-active order is an intrusive doubly linked list through the conversations: moving a
 * conversation to the tail when a datagram arrives is a few pointer writes, the idle sweeper reads the
 * head, and `evictOldestIdle` takes the head.
 *
 * @internal
 */
import * as NetAddress from "effect/net/NetAddress"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import type * as UDPClientConnection from "../UDPClientConnection.js"

type Conn = UDPClientConnection.UDPClientConnection

/** The native host and port of a datagram, when its socket provides them. */
export const nativeOf = (datagram: DatagramSocket.Datagram): UDPClientConnection.NativeAddress | undefined => {
  const candidate = datagram as Partial<UDPClientConnection.NativeAddress>
  return typeof candidate.host === "string" && typeof candidate.port === "number"
    ? { host: candidate.host, port: candidate.port }
    : undefined
}

/** The table key of a datagram's sender. */
export const keyOf = (datagram: DatagramSocket.Datagram): string => {
  const candidate = datagram as Partial<UDPClientConnection.NativeAddress>
  return typeof candidate.host === "string"
    ? `${candidate.host}:${candidate.port}`
    : NetAddress.formatInet(datagram.address)
}

/** The conversations of one socket. */
export class Table {
  readonly byKey = new Map<string, Conn>()
  /** Least recently active. */
  head: Conn | undefined = undefined
  /** Most recently active. */
  tail: Conn | undefined = undefined

  get size(): number {
    return this.byKey.size
  }

  get(key: string): Conn | undefined {
    return this.byKey.get(key)
  }

  add(connection: Conn): void {
    this.byKey.set(connection.key, connection)
    this.append(connection)
  }

  /** Remove `connection` if it is the one registered under its key; returns whether it was. */
  remove(connection: Conn): boolean {
    if (this.byKey.get(connection.key) !== connection) return false
    this.byKey.delete(connection.key)
    this.unlink(connection)
    return true
  }

  /** A datagram arrived for `connection` at `now`. */
  touch(connection: Conn, now: number): void {
    connection.lastActivity = now
    if (this.tail === connection) return
    this.unlink(connection)
    this.append(connection)
  }

  values(): IterableIterator<Conn> {
    return this.byKey.values()
  }

  private append(connection: Conn): void {
    connection.prev = this.tail
    connection.next = undefined
    if (this.tail === undefined) this.head = connection
    else this.tail.next = connection
    this.tail = connection
  }

  private unlink(connection: Conn): void {
    const { prev, next } = connection
    if (prev === undefined) this.head = next
    else prev.next = next
    if (next === undefined) this.tail = prev
    else next.prev = prev
    connection.prev = undefined
    connection.next = undefined
  }
}
