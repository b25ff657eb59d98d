/**
 * The packet trace of a simulation: every send, delivery, drop, duplication, hold and release, in order,
 * with a running hash. Two runs of the same program with the same seed produce the same hash; compare
 * hashes to check determinism, and print the trace (or its tail) to see what happened.
 *
 * @since 0.1.0
 */

/**
 * One end of a packet.
 *
 * @since 0.1.0
 */
export interface PacketEnd {
  /** The simulated host name, or `undefined` when no host owns the address. */
  readonly host: string | undefined
  readonly address: string
  readonly port: number
}

/**
 * What a rule and the trace see of a packet.
 *
 * @since 0.1.0
 */
export interface Packet {
  /** Unique per simulation, in send order; a duplicate keeps its original's id. */
  readonly id: number
  readonly protocol: "udp" | "tcp"
  readonly from: PacketEnd
  readonly to: PacketEnd
  /** Payload bytes (UDP datagram or TCP segment data). */
  readonly payload: Uint8Array
  /** TCP flags, e.g. `"SYN"`, `"ACK"`, `"FIN|ACK"`, `"RST"`; empty for UDP. */
  readonly flags: string
  /** TCP sequence number of the segment; 0 for UDP. */
  readonly seq: number
  /** Simulated time (ms) the packet was sent. */
  readonly sentAt: number
}

/**
 * Why a packet did not arrive.
 *
 * @since 0.1.0
 */
export type DropReason = "loss" | "mtu" | "partition" | "rule" | "unreachable" | "host-down" | "no-socket" | "too-large"

/**
 * One entry of the trace.
 *
 * @since 0.1.0
 */
export interface TraceEvent {
  /** Simulated time in milliseconds. */
  readonly time: number
  readonly kind: "send" | "deliver" | "drop" | "duplicate" | "delay" | "hold" | "release"
  readonly reason?: DropReason | undefined
  readonly packet: Packet
}

const endText = (end: PacketEnd): string =>
  `${end.host ?? "?"}/${end.address.includes(":") ? `[${end.address}]` : end.address}:${end.port}`

/**
 * One line for a trace event, e.g. `12.500ms deliver udp#42 a/10.0.0.1:5000 -> b/10.0.0.2:53 12B`.
 *
 * @since 0.1.0
 */
export const format = (event: TraceEvent): string => {
  const p = event.packet
  const flags = p.flags === "" ? "" : ` ${p.flags} seq=${p.seq}`
  const reason = event.reason === undefined ? "" : ` (${event.reason})`
  return `${event.time.toFixed(3)}ms ${event.kind}${reason} ${p.protocol}#${p.id} ${endText(p.from)} -> ${endText(
    p.to
  )} ${p.payload.byteLength}B${flags}`
}

const kindCode: Record<TraceEvent["kind"], number> = {
  send: 1,
  deliver: 2,
  drop: 3,
  duplicate: 4,
  delay: 5,
  hold: 6,
  release: 7
}

/**
 * Records events and keeps a running 64-bit hash of all of them (two 32-bit lanes of a multiply-xorshift
 * mix over each event's time in microseconds, kind, drop reason and its packet's fields: id, protocol,
 * addresses, ports, size, flags and sequence number). Only the last `capacity` events are kept in memory.
 *
 * @since 0.1.0
 */
export class Recorder {
  private h1 = 0x9747b28c
  private h2 = 0x85ebca6b
  private events: Array<TraceEvent> = []
  private start = 0
  private total = 0
  private readonly strings = new Map<string, number>()
  readonly capacity: number

  constructor(capacity: number) {
    this.capacity = Math.max(0, capacity)
  }

  /** How many events were recorded in total (including those no longer kept). */
  get count(): number {
    return this.total
  }

  /** A code for the packet's fields (id, protocol, addresses, ports, size, flags, sequence number). */
  packetCode(p: Packet): number {
    let h = Math.imul(p.id, 0x9e3779b1) ^ (p.protocol === "udp" ? 17 : 6)
    h = mix32(h, this.stringCode(p.from.address))
    h = mix32(h, p.from.port)
    h = mix32(h, this.stringCode(p.to.address))
    h = mix32(h, p.to.port)
    h = mix32(h, p.payload.byteLength)
    h = mix32(h, this.stringCode(p.flags))
    return mix32(h, p.seq)
  }

  /** Record one event; `code` is the packet's `packetCode`, computed here when not given. */
  record(time: number, kind: TraceEvent["kind"], packet: Packet, reason?: DropReason, code?: number): void {
    this.total++
    const micros = Math.round(time * 1000)
    this.mix(micros)
    this.mix(Math.floor(micros / 4294967296))
    this.mix(kindCode[kind])
    this.mix(reason === undefined ? 0 : this.stringCode(reason))
    this.mix(code ?? this.packetCode(packet))
    if (this.capacity === 0) return
    const event: TraceEvent = reason === undefined ? { time, kind, packet } : { time, kind, reason, packet }
    if (this.events.length < this.capacity) {
      this.events.push(event)
    } else {
      this.events[this.start] = event
      this.start = (this.start + 1) % this.capacity
    }
  }

  /** The kept events, oldest first. */
  snapshot(): ReadonlyArray<TraceEvent> {
    return this.start === 0
      ? this.events.slice()
      : [...this.events.slice(this.start), ...this.events.slice(0, this.start)]
  }

  /** The hash of every event recorded so far, as 16 hex digits. */
  hash(): string {
    const a = fmix(this.h1 ^ this.total)
    const b = fmix(this.h2 ^ Math.imul(this.total, 0x9e3779b1))
    return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0")
  }

  private stringCode(text: string): number {
    let code = this.strings.get(text)
    if (code === undefined) {
      code = 0x811c9dc5
      for (let i = 0; i < text.length; i++) code = Math.imul(code ^ text.charCodeAt(i), 0x01000193)
      this.strings.set(text, code)
    }
    return code
  }

  private mix(value: number): void {
    const k = Math.imul(value | 0, 0xcc9e2d51)
    this.h1 = Math.imul(((this.h1 ^ k) << 13) | ((this.h1 ^ k) >>> 19), 5) + 0xe6546b64
    this.h2 = Math.imul(this.h2 ^ Math.imul((k << 15) | (k >>> 17), 0x1b873593), 0x85ebca6b) ^ (this.h2 >>> 16)
  }
}

const mix32 = (h: number, value: number): number => Math.imul(h ^ (value | 0), 0x01000193) ^ (h >>> 15)

const fmix = (input: number): number => {
  let h = input
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h
}
