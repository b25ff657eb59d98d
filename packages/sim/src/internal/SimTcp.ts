/**
 * Simulated TCP: a reliable, ordered byte stream over the lossy simulated links.
 *
 * The model is a compact TCP: a three-way handshake, byte sequence numbers, cumulative acknowledgements,
 * retransmission on a timeout with exponential backoff (so loss becomes delay), a receive window for
 * flow control, FIN for half-close, RST for refused and reset connections, and a connection timeout:
 * when data (or a keep-alive probe) has gone unacknowledged and nothing was heard from the peer for that
 * long, the connection fails with `ETIMEDOUT`. There is no congestion control and no delayed ACK.
 *
 * The `effect/socket` side follows `@effect/platform-node`'s `fromDuplex`: acquiring a client socket's
 * reader connects (each acquisition is a new connection), `pull` never loses bytes when interrupted,
 * end of stream is a `SocketCloseError` with code 1000, closing the reader's scope closes the connection,
 * releasing the writer half-closes it, and writes wait for a connection.
 *
 * @internal
 */
import { Network } from "@diesel/core"
import type { NonEmptyReadonlyArray } from "effect/Array"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Latch from "effect/Latch"
import * as NetAddress from "effect/net/NetAddress"
import * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import * as SocketServer from "effect/socket/SocketServer"
import { SimSystemError, type SystemErrorCode } from "./Errors.js"
import { type HostState, isWildcard, type WirePacket, type World } from "./World.js"

/** TCP tuning of the simulation. All durations in milliseconds. */
export interface TcpConfig {
  readonly connectionTimeout: number
  readonly initialRto: number
  readonly minRto: number
  readonly maxRto: number
  readonly keepAlive: number | undefined
  readonly sendBuffer: number
  readonly receiveBuffer: number
}

interface Segment {
  readonly syn: boolean
  readonly ack: boolean
  readonly fin: boolean
  readonly rst: boolean
  readonly probe: boolean
  readonly seq: number
  readonly ackNo: number
  readonly window: number
  readonly data: Uint8Array
}

interface Outstanding {
  readonly seq: number
  readonly length: number
  readonly data: Uint8Array
  readonly syn: boolean
  readonly fin: boolean
  readonly sentAt: number
  retransmitted: boolean
}

const empty = new Uint8Array(0)

const flagsOf = (segment: Segment): string => {
  const flags: Array<string> = []
  if (segment.syn) flags.push("SYN")
  if (segment.fin) flags.push("FIN")
  if (segment.rst) flags.push("RST")
  if (segment.ack) flags.push("ACK")
  return flags.join("|")
}

const segment = (fields: Partial<Segment> & { readonly seq: number }): Segment => ({
  syn: false,
  ack: false,
  fin: false,
  rst: false,
  probe: false,
  ackNo: 0,
  window: 0,
  data: empty,
  ...fields
})

const systemError = (host: HostState, code: SystemErrorCode, syscall: string) =>
  new SimSystemError(code, syscall, host.name)

const readError = (cause: unknown) => new Socket.SocketError({ reason: new Socket.SocketReadError({ cause }) })
const writeError = (cause: unknown) => new Socket.SocketError({ reason: new Socket.SocketWriteError({ cause }) })
const closeError = (code: number) => new Socket.SocketError({ reason: new Socket.SocketCloseError({ code }) })
const openError = (kind: "Unknown" | "Timeout", cause: unknown) =>
  new Socket.SocketError({ reason: new Socket.SocketOpenError({ kind, cause }) })

interface Endpoint {
  readonly address: string
  readonly port: number
}

/** The TCP state of one host. */
class HostTcp {
  readonly listeners = new Map<number, Listener>()
  readonly connections = new Map<string, Connection>()

  portInUse(port: number): boolean {
    if (this.listeners.has(port)) return true
    for (const connection of this.connections.values()) if (connection.local.port === port) return true
    return false
  }
}

const hostTcp = (host: HostState): HostTcp => {
  if (host.tcp instanceof HostTcp) return host.tcp
  const tcp = new HostTcp()
  host.tcp = tcp
  return tcp
}

const connectionKey = (localPort: number, remote: Endpoint): string => `${localPort}|${remote.address}|${remote.port}`

class Listener {
  readonly host: HostState
  readonly address: string
  readonly port: number
  readonly backlog: number
  readonly pending: Array<Connection> = []
  onAccept: ((connection: Connection) => void) | undefined = undefined
  onFail: ((error: SocketServer.SocketServerError) => void) | undefined = undefined
  failure: SocketServer.SocketServerError | undefined = undefined
  closed = false

  constructor(host: HostState, address: string, port: number, backlog: number) {
    this.host = host
    this.address = address
    this.port = port
    this.backlog = backlog
  }

  accept(connection: Connection): void {
    if (this.closed) {
      connection.abort()
      return
    }
    if (this.onAccept !== undefined) {
      this.onAccept(connection)
      return
    }
    this.pending.push(connection)
  }

  readonly crash = (): void => {
    this.close()
    this.failure = new SocketServer.SocketServerError({
      reason: new SocketServer.SocketServerUnknownError({ cause: systemError(this.host, "EHOSTDOWN", "accept") })
    })
    this.onFail?.(this.failure)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    const tcp = hostTcp(this.host)
    if (tcp.listeners.get(this.port) === this) tcp.listeners.delete(this.port)
    this.host.closers.delete(this.crash)
    for (const connection of this.pending.splice(0)) connection.abort()
  }
}

/** One end of a simulated TCP connection. */
class Connection {
  readonly world: World
  readonly host: HostState
  readonly config: TcpConfig
  readonly local: Endpoint
  readonly remote: Endpoint
  readonly key: string
  readonly mss: number
  state: "syn-sent" | "syn-received" | "established" | "closed"

  // send side
  private sndUna = 0
  private sndNxt = 0
  private queue: Array<Uint8Array> = []
  private queuedBytes = 0
  private unacked: Array<Outstanding> = []
  private finQueued = false
  private finSent = false
  private finAcked = false
  private peerWindow: number
  private rto: number
  private srtt: number | undefined = undefined
  private timer: { cancelled: boolean } | undefined = undefined
  private waitingSince: number | undefined = undefined
  private keepAliveTimer: { cancelled: boolean } | undefined = undefined
  private probeOutstanding = false

  // receive side
  private rcvNxt = 0
  private readonly outOfOrder = new Map<number, Segment>()
  private readBuffer: Array<Uint8Array> = []
  private readBytes = 0
  private advertisedFull = false
  private peerFin = false
  private localEnded = false
  private readerClosed = false
  error: Socket.SocketError | undefined = undefined

  // waiters (resumed fibers re-check the state themselves, so a wake-up is never a lost value)
  private readonly waiters = new Set<() => void>()
  onEstablished: (() => void) | undefined = undefined

  constructor(
    world: World,
    host: HostState,
    config: TcpConfig,
    local: Endpoint,
    remote: Endpoint,
    state: "syn-sent" | "syn-received"
  ) {
    this.world = world
    this.host = host
    this.config = config
    this.local = local
    this.remote = remote
    this.key = connectionKey(local.port, remote)
    this.state = state
    this.peerWindow = config.receiveBuffer
    this.rto = config.initialRto
    const mtu = world.mtuBetween(host, remote.address)
    this.mss = Math.max(1, Math.min(65495, mtu - (remote.address.includes(":") ? 60 : 40)))
    hostTcp(host).connections.set(this.key, this)
    host.closers.add(this.crash)
  }

  // ---- wiring ----------------------------------------------------------------------------------------------

  private transmit(seg: Segment): void {
    if (!this.host.up) return
    this.world.send(
      this.world.packet({
        protocol: "tcp",
        srcHost: this.host,
        from: this.local,
        to: this.remote,
        payload: seg.data,
        flags: flagsOf(seg),
        seq: seg.seq,
        segment: seg
      })
    )
  }

  private wake(): void {
    if (this.waiters.size === 0) return
    const waiters = [...this.waiters]
    this.waiters.clear()
    for (const waiter of waiters) waiter()
  }

  /** Suspend until the next state change. */
  readonly changed: Effect.Effect<void> = Effect.callback<void>((resume) => {
    const waiter = () => resume(Effect.void)
    this.waiters.add(waiter)
    return Effect.sync(() => {
      this.waiters.delete(waiter)
    })
  })

  private window(): number {
    return Math.max(0, this.config.receiveBuffer - this.readBytes)
  }

  private sendAck(probe = false): void {
    const window = this.window()
    this.advertisedFull = window < this.mss
    this.transmit(segment({ seq: this.sndNxt, ack: true, ackNo: this.rcvNxt, window, probe }))
  }

  private now(): number {
    return this.world.now()
  }

  // ---- opening ---------------------------------------------------------------------------------------------

  /** Client side: send the SYN. */
  open(): void {
    this.sendOutstanding({ seq: 0, length: 1, data: empty, syn: true, fin: false })
    this.sndNxt = 1
  }

  /** Server side: answer a SYN. */
  answer(synSeq: number): void {
    this.rcvNxt = synSeq + 1
    this.sendOutstanding({ seq: 0, length: 1, data: empty, syn: true, fin: false })
    this.sndNxt = 1
  }

  private sendOutstanding(item: Omit<Outstanding, "sentAt" | "retransmitted">): void {
    const entry: Outstanding = { ...item, sentAt: this.now(), retransmitted: false }
    this.unacked.push(entry)
    this.transmitOutstanding(entry)
    this.armTimer()
  }

  private transmitOutstanding(entry: Outstanding): void {
    const synAck = entry.syn && this.state === "syn-received"
    this.transmit(
      segment({
        seq: entry.seq,
        syn: entry.syn,
        fin: entry.fin,
        ack: !entry.syn || synAck,
        ackNo: this.rcvNxt,
        window: this.window(),
        data: entry.data
      })
    )
  }

  // ---- timers ----------------------------------------------------------------------------------------------

  private armTimer(): void {
    if (this.state === "closed") return
    if (this.unacked.length === 0 && !this.probeOutstanding) {
      if (this.timer !== undefined) this.timer.cancelled = true
      this.timer = undefined
      this.waitingSince = undefined
      this.armKeepAlive()
      return
    }
    this.waitingSince ??= this.now()
    if (this.timer !== undefined) return
    const deadline = this.waitingSince + this.config.connectionTimeout
    this.timer = this.world.schedule(Math.min(this.now() + this.rto, deadline), () => this.onTimer())
  }

  private restartTimer(): void {
    if (this.timer !== undefined) this.timer.cancelled = true
    this.timer = undefined
    this.armTimer()
  }

  private onTimer(): void {
    this.timer = undefined
    if (this.state === "closed") return
    const now = this.now()
    if (this.waitingSince !== undefined && now - this.waitingSince >= this.config.connectionTimeout) {
      this.fail(systemError(this.host, "ETIMEDOUT", this.state === "syn-sent" ? "connect" : "read"))
      return
    }
    for (const entry of this.unacked) {
      entry.retransmitted = true
      this.transmitOutstanding(entry)
    }
    if (this.probeOutstanding) this.sendAck(true)
    this.rto = Math.min(this.rto * 2, this.config.maxRto)
    this.armTimer()
  }

  private armKeepAlive(): void {
    const interval = this.config.keepAlive
    if (interval === undefined || this.state !== "established" || this.keepAliveTimer !== undefined) return
    this.keepAliveTimer = this.world.schedule(this.now() + interval, () => {
      this.keepAliveTimer = undefined
      if (this.state !== "established" || this.unacked.length > 0) return this.armKeepAlive()
      this.probeOutstanding = true
      this.sendAck(true)
      this.armTimer()
    })
  }

  // ---- sending ---------------------------------------------------------------------------------------------

  private inFlightBytes(): number {
    return this.sndNxt - this.sndUna
  }

  private pump(): void {
    if (this.state !== "established") return
    while (this.queue.length > 0) {
      const next = this.queue[0] as Uint8Array
      const inFlight = this.inFlightBytes()
      if (inFlight > 0 && inFlight + next.byteLength > this.peerWindow) break
      this.queue.shift()
      this.queuedBytes -= next.byteLength
      this.sendOutstanding({ seq: this.sndNxt, length: next.byteLength, data: next, syn: false, fin: false })
      this.sndNxt += next.byteLength
    }
    if (this.queue.length === 0 && this.finQueued && !this.finSent) {
      this.finSent = true
      this.sendOutstanding({ seq: this.sndNxt, length: 1, data: empty, syn: false, fin: true })
      this.sndNxt += 1
    }
  }

  /** Queue bytes for sending, cut into segments of at most one MSS. */
  enqueue(data: Uint8Array): void {
    for (let offset = 0; offset < data.byteLength; offset += this.mss) {
      const chunk = data.slice(offset, Math.min(data.byteLength, offset + this.mss))
      this.queue.push(chunk)
      this.queuedBytes += chunk.byteLength
    }
    this.pump()
  }

  get writable(): boolean {
    return this.queuedBytes + this.inFlightBytes() < this.config.sendBuffer
  }

  get ended(): boolean {
    return this.finQueued
  }

  /** `destroy` ran: writes still waiting for buffer space fail, as Node fails them on `socket.destroy()`. */
  get destroyed(): boolean {
    return this.localEnded
  }

  /** Half-close: FIN after the queued bytes. */
  shutdownWrite(): void {
    if (this.finQueued || this.state === "closed") return
    this.finQueued = true
    this.pump()
  }

  /** `socket.destroy()`: our reads end now, our writes end after the queued bytes. */
  destroy(): void {
    this.localEnded = true
    this.shutdownWrite()
    this.wake()
  }

  /** The reader's scope closed: close the connection (RST when unread data is discarded, as the OS does). */
  closeReader(): void {
    if (this.readerClosed) return
    this.readerClosed = true
    if (this.state === "closed") {
      this.wake()
      return
    }
    if (this.readBytes > 0 || this.outOfOrder.size > 0) {
      this.abort()
      return
    }
    this.shutdownWrite()
    this.maybeFinished()
    this.wake()
  }

  /** Reset the connection. */
  abort(cause?: unknown): void {
    if (this.state === "closed") return
    this.transmit(segment({ seq: this.sndNxt, rst: true, ack: true, ackNo: this.rcvNxt }))
    this.fail(cause ?? systemError(this.host, "ECONNRESET", "close"), true)
  }

  readonly crash = (reset: boolean): void => {
    if (reset) this.transmit(segment({ seq: this.sndNxt, rst: true, ack: true, ackNo: this.rcvNxt }))
    this.fail(systemError(this.host, "EHOSTDOWN", "read"), true)
  }

  /** End the connection with an error; pending bytes are discarded, as Node does on an error. */
  fail(cause: unknown, local = false): void {
    if (this.state === "closed") return
    const wasOpening = this.state === "syn-sent"
    this.state = "closed"
    this.error = wasOpening ? openError("Unknown", cause) : local ? closeError(1006) : readError(cause)
    this.writeFailure = writeError(cause)
    this.readBuffer = []
    this.readBytes = 0
    this.queue = []
    this.queuedBytes = 0
    this.unacked = []
    this.release()
    this.wake()
  }

  writeFailure: Socket.SocketError | undefined = undefined

  private release(): void {
    if (this.timer !== undefined) this.timer.cancelled = true
    if (this.keepAliveTimer !== undefined) this.keepAliveTimer.cancelled = true
    this.timer = undefined
    this.keepAliveTimer = undefined
    const tcp = hostTcp(this.host)
    if (tcp.connections.get(this.key) === this) tcp.connections.delete(this.key)
    this.host.closers.delete(this.crash)
  }

  private maybeFinished(): void {
    if (this.state !== "closed" && this.finAcked && (this.peerFin || this.readerClosed)) {
      this.state = "closed"
      this.release()
      this.wake()
    }
  }

  // ---- receiving -------------------------------------------------------------------------------------------

  receive(seg: Segment): void {
    if (this.state === "closed") return
    if (seg.rst) {
      this.fail(systemError(this.host, this.state === "syn-sent" ? "ECONNREFUSED" : "ECONNRESET", "read"))
      return
    }
    if (this.probeOutstanding && seg.ack) {
      this.probeOutstanding = false
      if (this.unacked.length === 0) this.waitingSince = undefined
    }

    if (this.state === "syn-sent") {
      if (!(seg.syn && seg.ack)) return
      this.rcvNxt = seg.seq + 1
      this.state = "established"
      this.acknowledge(seg)
      this.sendAck()
      this.wake()
      return
    }
    if (seg.syn) {
      // a retransmitted SYN or SYN-ACK: our answer was lost
      if (this.state === "syn-received") {
        for (const entry of this.unacked) this.transmitOutstanding(entry)
      } else {
        this.sendAck()
      }
      return
    }
    if (this.state === "syn-received" && seg.ack && seg.ackNo >= 1) {
      this.state = "established"
      this.acknowledge(seg)
      this.onEstablished?.()
    } else if (seg.ack) {
      this.acknowledge(seg)
    }
    if (seg.data.byteLength > 0 || seg.fin || seg.probe) {
      if (seg.data.byteLength > 0 && this.readerClosed) {
        this.abort()
        return
      }
      if (seg.seq === this.rcvNxt) {
        if (this.accept(seg)) {
          let next = this.outOfOrder.get(this.rcvNxt)
          while (next !== undefined) {
            this.outOfOrder.delete(this.rcvNxt)
            if (!this.accept(next)) break
            next = this.outOfOrder.get(this.rcvNxt)
          }
        }
      } else if (seg.seq > this.rcvNxt && seg.seq - this.rcvNxt < this.config.receiveBuffer) {
        this.outOfOrder.set(seg.seq, seg)
      }
      this.sendAck()
    }
    this.maybeFinished()
  }

  private accept(seg: Segment): boolean {
    const length = seg.data.byteLength
    if (length > 0) {
      if (this.peerFin || this.localEnded) return true
      if (this.readBytes + length > this.config.receiveBuffer) return false
      this.readBuffer.push(seg.data)
      this.readBytes += length
      this.rcvNxt += length
    }
    if (seg.fin && !this.peerFin) {
      this.peerFin = true
      this.rcvNxt += 1
    }
    this.wake()
    return true
  }

  private acknowledge(seg: Segment): void {
    const opened = this.peerWindow < this.mss && seg.window >= this.mss
    this.peerWindow = seg.window
    if (seg.ackNo > this.sndUna) {
      const now = this.now()
      let sample: number | undefined
      while (this.unacked.length > 0) {
        const first = this.unacked[0] as Outstanding
        if (first.seq + first.length > seg.ackNo) break
        this.unacked.shift()
        if (first.fin) this.finAcked = true
        if (!first.retransmitted) sample = now - first.sentAt
      }
      this.sndUna = seg.ackNo
      if (sample !== undefined) {
        this.srtt = this.srtt === undefined ? sample : 0.875 * this.srtt + 0.125 * sample
      }
      this.rto = Math.min(this.config.maxRto, Math.max(this.config.minRto, 2 * (this.srtt ?? this.config.initialRto)))
      this.waitingSince = undefined
      this.restartTimer()
      this.wake()
    } else if (opened) {
      for (const entry of this.unacked) this.transmitOutstanding(entry)
    }
    // a peer that answers with a closed window is alive, just slow to read
    if (seg.window < this.mss && this.waitingSince !== undefined) this.waitingSince = this.now()
    this.pump()
  }

  // ---- the application side ---------------------------------------------------------------------------------

  /** What a pull returns now, or `undefined` to wait. */
  readNow(): Effect.Effect<NonEmptyReadonlyArray<Uint8Array>, Socket.SocketError> | undefined {
    if (this.readBuffer.length > 0) {
      const chunks = this.readBuffer as unknown as NonEmptyReadonlyArray<Uint8Array>
      this.readBuffer = []
      this.readBytes = 0
      if (this.advertisedFull && this.state !== "closed") this.sendAck()
      return Effect.succeed(chunks)
    }
    if (this.error !== undefined) return Effect.fail(this.error)
    if (this.readerClosed) return Effect.fail(closeError(1006))
    if (this.peerFin || this.localEnded) return Effect.fail(closeError(1000))
    return undefined
  }
}

// ---- the world's TCP entry point -------------------------------------------------------------------------------

export const install = (world: World): void => {
  world.tcp = {
    receive: (host, packet) => {
      const seg = packet.segment as Segment
      const tcp = hostTcp(host)
      const remote = { address: packet.from.address, port: packet.from.port }
      const existing = tcp.connections.get(connectionKey(packet.to.port, remote))
      if (existing !== undefined) return existing.receive(seg)
      if (seg.rst) return
      if (!seg.syn && seg.data.byteLength === 0) {
        // a late FIN or ACK for a connection already closed here (TIME_WAIT): acknowledge FINs, ignore the rest
        if (seg.fin) acknowledgeStray(world, host, packet, seg)
        return
      }
      const listener = tcp.listeners.get(packet.to.port)
      if (seg.syn && !seg.ack && listener !== undefined && !listener.closed && listensOn(listener, packet)) {
        if (listener.pending.length >= listener.backlog) return
        const connection = new Connection(
          world,
          host,
          configs.get(world) ?? defaultConfig,
          { address: packet.to.address, port: packet.to.port },
          remote,
          "syn-received"
        )
        connection.onEstablished = () => listener.accept(connection)
        connection.answer(seg.seq)
        return
      }
      reset(world, host, packet, seg)
    }
  }
}

const configs = new WeakMap<World, TcpConfig>()

export const defaultConfig: TcpConfig = {
  connectionTimeout: 30_000,
  initialRto: 1_000,
  minRto: 200,
  maxRto: 10_000,
  keepAlive: undefined,
  sendBuffer: 256 * 1024,
  receiveBuffer: 256 * 1024
}

export const configure = (world: World, config: TcpConfig): void => {
  configs.set(world, config)
}

const listensOn = (listener: Listener, packet: WirePacket): boolean =>
  isWildcard(listener.address) || listener.address === packet.to.address

const acknowledgeStray = (world: World, host: HostState, packet: WirePacket, seg: Segment): void => {
  const reply = segment({ seq: seg.ackNo, ack: true, ackNo: seg.seq + 1, window: 65535 })
  world.send(
    world.packet({
      protocol: "tcp",
      srcHost: host,
      from: { address: packet.to.address, port: packet.to.port },
      to: { address: packet.from.address, port: packet.from.port },
      payload: empty,
      flags: flagsOf(reply),
      seq: reply.seq,
      segment: reply
    })
  )
}

const reset = (world: World, host: HostState, packet: WirePacket, seg: Segment): void => {
  world.send(
    world.packet({
      protocol: "tcp",
      srcHost: host,
      from: { address: packet.to.address, port: packet.to.port },
      to: { address: packet.from.address, port: packet.from.port },
      payload: empty,
      flags: "RST|ACK",
      seq: seg.ack ? seg.ackNo : 0,
      segment: segment({
        seq: seg.ack ? seg.ackNo : 0,
        rst: true,
        ack: true,
        ackNo: seg.seq + seg.data.byteLength + (seg.syn || seg.fin ? 1 : 0)
      })
    })
  )
}

// ---- effect/socket adapters ----------------------------------------------------------------------------------

const encoder = new TextEncoder()

const makeSocket = (
  open: Effect.Effect<Connection, Socket.SocketError, Scope.Scope>,
  openTimeout: number | undefined
): Socket.Socket => {
  let current: Connection | undefined
  const latch = Latch.makeUnsafe(false)

  const reader: Socket.Socket["reader"] = Effect.gen(function* () {
    const scope = yield* Effect.scope
    const opening = Scope.provide(open, scope)
    const connection = yield* openTimeout === undefined
      ? opening
      : Effect.timeoutOrElse(opening, {
          duration: Duration.millis(openTimeout),
          orElse: () => Effect.fail(openError("Timeout", new Error("Connection timed out")))
        })
    yield* Scope.addFinalizer(
      scope,
      Effect.sync(() => {
        connection.closeReader()
        if (current === connection) current = undefined
        latch.closeUnsafe()
      })
    )
    current = connection
    latch.openUnsafe()
    const pull: Effect.Effect<NonEmptyReadonlyArray<Uint8Array>, Socket.SocketError> = Effect.suspend(
      () => connection.readNow() ?? Effect.andThen(connection.changed, pull)
    )
    return { pull, upgrade: () => Effect.void }
  })

  const awaitWritable = (connection: Connection): Effect.Effect<void, Socket.SocketError> =>
    Effect.suspend(() => {
      if (connection.writeFailure !== undefined) return Effect.fail(connection.writeFailure)
      if (connection.writable || connection.state === "closed") return Effect.void
      if (connection.destroyed) return Effect.fail(writeError(systemError(connection.host, "EPIPE", "write")))
      return Effect.andThen(connection.changed, awaitWritable(connection))
    })

  const writeBytes = (connection: Connection, data: Uint8Array): Effect.Effect<void, Socket.SocketError> => {
    if (connection.writeFailure !== undefined) return Effect.fail(connection.writeFailure)
    if (connection.ended || connection.state === "closed") {
      return Effect.fail(writeError(systemError(connection.host, "EPIPE", "write")))
    }
    if (data.byteLength > 0) connection.enqueue(data)
    return connection.writable ? Effect.void : awaitWritable(connection)
  }

  const write = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> =>
    Effect.suspend(() => {
      const connection = current
      if (connection === undefined) return latch.whenOpen(write(chunk))
      if (Socket.isCloseEvent(chunk)) {
        if (chunk.code > 1000) connection.abort(new Error(`closed with code ${chunk.code}`))
        else connection.destroy()
        return Effect.void
      }
      return writeBytes(connection, typeof chunk === "string" ? encoder.encode(chunk) : chunk)
    })

  const writeAll = (chunks: NonEmptyReadonlyArray<Uint8Array | string>): Effect.Effect<void, Socket.SocketError> =>
    Effect.suspend(() => {
      const connection = current
      if (connection === undefined) return latch.whenOpen(writeAll(chunks))
      let total = 0
      const parts = chunks.map((chunk) => (typeof chunk === "string" ? encoder.encode(chunk) : chunk))
      for (const part of parts) total += part.byteLength
      const joined = new Uint8Array(total)
      let offset = 0
      for (const part of parts) {
        joined.set(part, offset)
        offset += part.byteLength
      }
      return writeBytes(connection, joined)
    })

  const writer: Socket.Socket["writer"] = Effect.acquireRelease(Effect.succeed({ write, writeAll }), () =>
    Effect.sync(() => current?.shutdownWrite())
  )

  return Socket.make({ reader, writer })
}

const awaitOpen = (connection: Connection): Effect.Effect<Connection, Socket.SocketError> =>
  Effect.suspend(() => {
    if (connection.state === "established") return Effect.succeed(connection)
    if (connection.error !== undefined) return Effect.fail(connection.error)
    if (connection.state === "closed") return Effect.fail(openError("Unknown", new Error("connection closed")))
    return Effect.andThen(connection.changed, awaitOpen(connection))
  })

/** A client socket on `host`; each acquisition of its reader opens a new connection. */
export const connect = (
  world: World,
  host: HostState,
  options: Network.ConnectOptions,
  resolve: (name: string, family: "ipv4" | "ipv6" | undefined) => Effect.Effect<string, Socket.SocketError>
): Socket.Socket => {
  const open: Effect.Effect<Connection, Socket.SocketError, Scope.Scope> = Effect.gen(function* () {
    const address = yield* resolve(options.host, options.family)
    if (!host.up) return yield* openError("Unknown", systemError(host, "EHOSTDOWN", "connect"))
    const tcp = hostTcp(host)
    const localAddress = host.sourceFor(options.localAddress ?? "0.0.0.0", address)
    const port = host.ephemeralPort((p) => tcp.portInUse(p))
    if (port === undefined) return yield* openError("Unknown", systemError(host, "EADDRINUSE", "connect"))
    const connection = new Connection(
      world,
      host,
      configs.get(world) ?? defaultConfig,
      { address: localAddress, port },
      { address, port: options.port },
      "syn-sent"
    )
    connection.open()
    return yield* awaitOpen(connection).pipe(Effect.onInterrupt(() => Effect.sync(() => connection.abort())))
  })
  const timeout =
    options.timeout === undefined ? undefined : Duration.toMillis(Duration.fromInputUnsafe(options.timeout))
  return makeSocket(open, timeout)
}

/** A listening server on `host`, closed with the scope. */
export const listen = (
  host: HostState,
  options: Network.ListenOptions
): Effect.Effect<SocketServer.SocketServer["Service"], SocketServer.SocketServerError, Scope.Scope> =>
  Effect.gen(function* () {
    const openFailure = (cause: unknown) =>
      new SocketServer.SocketServerError({ reason: new SocketServer.SocketServerOpenError({ cause }) })
    if (!host.up) return yield* Effect.fail(openFailure(systemError(host, "EHOSTDOWN", "listen")))
    const requested = options.host === undefined || options.host === "" ? "::" : options.host
    const address = requested === "localhost" ? "127.0.0.1" : requested
    if (!host.owns(address)) return yield* Effect.fail(openFailure(systemError(host, "EADDRNOTAVAIL", "listen")))
    const tcp = hostTcp(host)
    const requestedPort = options.port ?? 0
    const port = requestedPort === 0 ? host.ephemeralPort((p) => tcp.portInUse(p)) : requestedPort
    if (port === undefined || tcp.listeners.has(port)) {
      return yield* Effect.fail(openFailure(systemError(host, "EADDRINUSE", "listen")))
    }
    const listener = new Listener(host, address, port, options.backlog ?? 511)
    tcp.listeners.set(port, listener)
    host.closers.add(listener.crash)
    yield* Effect.addFinalizer(() => Effect.sync(() => listener.close()))
    const bound = NetAddress.inetAddressFromIpString(address, port)
    if (bound._tag === "Failure") return yield* Effect.fail(openFailure(bound.failure))

    const run = <R, E, _>(
      handler: (socket: Socket.Socket) => Effect.Effect<_, E, R>
    ): Effect.Effect<never, SocketServer.SocketServerError, R> =>
      Effect.gen(function* () {
        if (listener.failure !== undefined) return yield* Effect.fail(listener.failure)
        const scope = yield* Scope.make()
        const services = Context.omit(Scope.Scope)(yield* Effect.context<R>()) as Context.Context<R>
        const track = Fiber.runIn(scope)
        const serve = (connection: Connection) => {
          const socket = makeSocket(
            Effect.acquireRelease(Effect.succeed(connection), () => Effect.sync(() => connection.closeReader())),
            undefined
          )
          const local = NetAddress.inetAddressFromIpString(connection.local.address, connection.local.port)
          const remote = NetAddress.inetAddressFromIpString(connection.remote.address, connection.remote.port)
          const context =
            local._tag === "Success" && remote._tag === "Success"
              ? Context.add(services, Network.AcceptedEnds, { local: local.success, remote: remote.success })
              : services
          track(
            Effect.runForkWith(context)(
              handler(socket).pipe(
                Effect.ignoreCause({ log: "Unhandled", message: "Unhandled error in simulated SocketServer" })
              )
            )
          )
        }
        return yield* Effect.callback<never, SocketServer.SocketServerError>((resume) => {
          listener.onAccept = serve
          listener.onFail = (error) => resume(Effect.fail(error))
          for (const connection of listener.pending.splice(0)) serve(connection)
          return Effect.suspend(() => {
            listener.onAccept = undefined
            listener.onFail = undefined
            return Scope.close(scope, Exit.void)
          })
        }).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
      })

    return SocketServer.SocketServer.of({ address: bound.success, run })
  })
