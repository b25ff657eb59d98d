/**
 * The conversation table of one socket: conversations keyed by their peer, in least-recently-active order.
 *
 * A socket has one local address, so the remote half of the 4-tuple is the key: the peer's host and port as
 * the native socket spells them, fields effect's Node socket already filled. The lookup is by port (a
 * number: no string is built or hashed per datagram), then by comparing the host along the short chain of
 * conversations that share that port. A socket whose datagrams lack those fields (a simulated network)
 * falls back to the formatted address as the host.
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

/** The sender of a datagram as the native socket spelled it, or its formatted address on other sockets. */
export const senderOf = (datagram: DatagramSocket.Datagram): UDPClientConnection.NativeAddress => {
  const candidate = datagram as Partial<UDPClientConnection.NativeAddress>
  return typeof candidate.host === "string" && typeof candidate.port === "number"
    ? { host: candidate.host, port: candidate.port }
    : { host: NetAddress.formatInet(datagram.address), port: datagram.address.port }
}

/** Whether the datagram carries its native sender (`host`, `port`), as effect's Node socket's do. */
export const hasNative = (
  datagram: DatagramSocket.Datagram
): datagram is DatagramSocket.Datagram & UDPClientConnection.NativeAddress =>
  typeof (datagram as Partial<UDPClientConnection.NativeAddress>).host === "string"

/** The conversations of one socket. */
export class Table {
  /** Conversations by peer port; conversations sharing a port are chained through `samePort`. */
  private readonly byPort = new Map<number, Conn>()
  private count = 0
  /** Least recently active. */
  head: Conn | undefined = undefined
  /** Most recently active. */
  tail: Conn | undefined = undefined

  get size(): number {
    return this.count
  }

  get(host: string, port: number): Conn | undefined {
    let connection = this.byPort.get(port)
    while (connection !== undefined && connection.key !== host) connection = connection.samePort
    return connection
  }

  add(connection: Conn): void {
    connection.samePort = this.byPort.get(connection.port)
    this.byPort.set(connection.port, connection)
    this.count++
    this.append(connection)
  }

  /** Remove `connection` if it is in the table; returns whether it was. */
  remove(connection: Conn): boolean {
    const first = this.byPort.get(connection.port)
    if (first === connection) {
      if (connection.samePort === undefined) this.byPort.delete(connection.port)
      else this.byPort.set(connection.port, connection.samePort)
    } else {
      let previous = first
      while (previous !== undefined && previous.samePort !== connection) previous = previous.samePort
      if (previous === undefined) return false
      previous.samePort = connection.samePort
    }
    connection.samePort = undefined
    this.count--
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

  *values(): IterableIterator<Conn> {
    for (let connection = this.head; connection !== undefined; connection = connection.next) yield connection
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
