/**
 * The simulated network's state and packet pipeline: hosts and their addresses, links, partitions,
 * holds, the event queue that delivers packets in simulated time, and the trace. Everything here is
 * synchronous; fibers meet it only at the socket edges (internal/SimDatagram.ts, internal/SimTcp.ts).
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Link from "../Link.js"
import type * as Rule from "../Rule.js"
import * as Trace from "../Trace.js"
import { EventQueue } from "./EventQueue.js"
import { Random, seedToInt } from "./Random.js"

export interface WirePacket extends Trace.Packet {
  readonly srcHost: HostState
  readonly dstHost: HostState | undefined
  /** The TCP segment this packet carries. */
  readonly segment: unknown
  /** Called when the packet reaches its host but no socket (ICMP port unreachable). */
  readonly unreachable: (() => void) | undefined
  /** `Trace.Recorder.packetCode` of the packet, computed once. */
  traceCode: number
}

export interface PacketSpec {
  readonly protocol: "udp" | "tcp"
  readonly srcHost: HostState
  readonly from: { readonly address: string; readonly port: number }
  readonly to: { readonly address: string; readonly port: number }
  readonly payload: Uint8Array
  readonly flags?: string | undefined
  readonly seq?: number | undefined
  readonly segment?: unknown
  readonly unreachable?: (() => void) | undefined
}

export interface UdpBinding {
  readonly port: number
  readonly receive: (packet: WirePacket) => void
}

export interface TcpHandler {
  readonly receive: (host: HostState, packet: WirePacket) => void
}

export class HostState {
  readonly name: string
  readonly index: number
  readonly v4: ReadonlyArray<string>
  readonly v6: ReadonlyArray<string>
  up = true
  /** Incremented on each crash, so that stale callbacks can tell their host has been restarted. */
  epoch = 0
  readonly udp = new Map<number, UdpBinding>()
  /** Sockets' teardown callbacks, run on crash. */
  readonly closers = new Set<(reset: boolean) => void>()
  /** TCP state, owned by internal/SimTcp.ts. */
  tcp: unknown = undefined
  /** Outgoing links, by destination host. */
  readonly links = new Map<HostState, LinkEntry>()
  private nextEphemeral = 49152

  constructor(name: string, index: number, v4: ReadonlyArray<string>, v6: ReadonlyArray<string>) {
    this.name = name
    this.index = index
    this.v4 = v4
    this.v6 = v6
  }

  owns(address: string): boolean {
    return isLoopback(address) || isWildcard(address) || this.v4.includes(address) || this.v6.includes(address)
  }

  /** The source address for a packet to `destination` from a socket bound to `bound`. */
  sourceFor(bound: string, destination: string): string {
    if (!isWildcard(bound)) return bound
    const v6 = destination.includes(":")
    if (isLoopback(destination) || isWildcard(destination)) return v6 ? "::1" : "127.0.0.1"
    return (v6 ? this.v6[0] : this.v4[0]) ?? (v6 ? "::1" : "127.0.0.1")
  }

  ephemeralPort(inUse: (port: number) => boolean): number | undefined {
    for (let i = 0; i < 16384; i++) {
      const port = this.nextEphemeral
      this.nextEphemeral = port === 65535 ? 49152 : port + 1
      if (!inUse(port)) return port
    }
    return undefined
  }
}

export const isLoopback = (address: string): boolean => address === "::1" || address.startsWith("127.")
export const isWildcard = (address: string): boolean => address === "0.0.0.0" || address === "::"

export interface HostOptions {
  /** IPv4 addresses; default one address `10.x.y.z` derived from the host's index. */
  readonly ipv4?: ReadonlyArray<string> | undefined
  /** IPv6 addresses; default one address `fd00::<index>`. */
  readonly ipv6?: ReadonlyArray<string> | undefined
}

export interface InFlight {
  readonly packet: Trace.Packet
  /** When it is due to arrive (ms); for a held packet, when it reached the hold. */
  readonly deliverAt: number
  readonly held: boolean
}

/** One direction of a link: its settings, its random stream, its queue state, its faults. */
class LinkEntry {
  readonly random: Random
  options: Link.LinkOptions | undefined = undefined
  config: Link.LinkConfig | undefined = undefined
  lastDelivery = 0
  busyUntil = 0
  partitioned = false
  held = false

  constructor(random: Random) {
    this.random = random
  }
}

export interface Stats {
  sent: number
  delivered: number
  duplicated: number
  dropped: Record<Trace.DropReason, number>
}

export interface WorldOptions {
  readonly seed: number | string
  readonly link: Link.LinkConfig
  readonly loopback: Link.LinkConfig
  readonly traceCapacity: number
  /** Delivery times are rounded up to a multiple of this (ms); at least one microsecond. */
  readonly resolution: number
  readonly clock: Clock.Clock
  readonly fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
  /** Call `fire` at simulated time `time` without a fiber (a `SimClock` offers this). */
  readonly timer?: ((time: number, fire: () => void) => void) | undefined
}

export class World {
  readonly seed: number | string
  readonly hosts = new Map<string, HostState>()
  private readonly byAddress = new Map<string, HostState>()
  private defaults: Link.LinkConfig
  readonly loopback: Link.LinkConfig
  private held: Array<WirePacket> = []
  private readonly inFlight = new Map<WirePacket, number>()
  private readonly events = new EventQueue()
  private timers: Array<number> = []
  private processing: number | undefined = undefined
  readonly rules: Array<Rule.Rule> = []
  readonly trace: Trace.Recorder
  readonly stats: Stats = {
    sent: 0,
    delivered: 0,
    duplicated: 0,
    dropped: {
      loss: 0,
      mtu: 0,
      partition: 0,
      rule: 0,
      unreachable: 0,
      "host-down": 0,
      "no-socket": 0,
      "too-large": 0
    }
  }
  tcp: TcpHandler | undefined = undefined
  private nextPacketId = 1
  private readonly seedInt: number
  private readonly resolution: number
  private readonly clock: Clock.Clock
  private readonly fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
  private readonly timer: ((time: number, fire: () => void) => void) | undefined

  constructor(options: WorldOptions) {
    this.seed = options.seed
    this.seedInt = seedToInt(options.seed)
    this.resolution = Math.max(0.001, options.resolution)
    this.defaults = options.link
    this.loopback = options.loopback
    this.trace = new Trace.Recorder(options.traceCapacity)
    this.clock = options.clock
    this.fork = options.fork
    this.timer = options.timer
  }

  // ---- time -------------------------------------------------------------------------------------------

  /** Simulated now (ms): the time of the event being processed, else the clock. */
  now(): number {
    return this.processing ?? this.clock.currentTimeMillisUnsafe()
  }

  /** Bumped by every packet sent or delivered; lets `runUntilIdle` see when traffic has settled. */
  activity = 0

  /** Run `run` at simulated time `time` (ms). */
  schedule(time: number, run: () => void): { cancelled: boolean } {
    const event = this.events.push(time, run)
    this.arm(time)
    return event
  }

  /** Time of the next pending event, if any. */
  nextEventTime(): number | undefined {
    return this.events.peekTime()
  }

  private arm(time: number): void {
    const timers = this.timers
    if (timers.length > 0 && (timers[0] as number) <= time) return
    timers.unshift(time)
    if (this.timer !== undefined) {
      this.timer(time, () => this.fire(time))
      return
    }
    this.fork(
      Effect.suspend(() =>
        Effect.sleep(Duration.millis(Math.max(0, time - this.clock.currentTimeMillisUnsafe())))
      ).pipe(Effect.andThen(Effect.sync(() => this.fire(time))))
    )
  }

  private fire(time: number): void {
    const index = this.timers.indexOf(time)
    if (index !== -1) this.timers.splice(index, 1)
    const upTo = Math.max(time, this.clock.currentTimeMillisUnsafe())
    try {
      while (true) {
        const next = this.events.peekTime()
        if (next === undefined || next > upTo) break
        const event = this.events.pop()
        if (event === undefined) break
        this.processing = event.time
        event.run()
      }
    } finally {
      this.processing = undefined
    }
    const next = this.events.peekTime()
    if (next !== undefined) this.arm(next)
  }

  // ---- hosts ------------------------------------------------------------------------------------------

  addHost(name: string, options?: HostOptions): HostState {
    const existing = this.hosts.get(name)
    if (existing !== undefined) return existing
    const index = this.hosts.size + 1
    const v4 = options?.ipv4 ?? [`10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`]
    const v6 = options?.ipv6 ?? [`fd00::${index.toString(16)}`]
    for (const address of [...v4, ...v6]) {
      const owner = this.byAddress.get(address)
      if (owner !== undefined) throw new Error(`address ${address} of host ${name} already belongs to ${owner.name}`)
    }
    const host = new HostState(name, index, v4, v6)
    this.hosts.set(name, host)
    for (const address of [...v4, ...v6]) this.byAddress.set(address, host)
    return host
  }

  host(name: string): HostState {
    const host = this.hosts.get(name)
    if (host === undefined) throw new Error(`no simulated host named ${name}`)
    return host
  }

  hostByAddress(address: string): HostState | undefined {
    return this.byAddress.get(address)
  }

  /** Crash a host: its sockets die (TCP peers get RST unless `reset` is false); it drops all traffic. */
  crash(host: HostState, reset: boolean): void {
    if (!host.up) return
    // sockets close while the host is still up, so that their RSTs leave it
    const closers = [...host.closers]
    host.closers.clear()
    for (const close of closers) close(reset)
    host.up = false
    host.epoch++
  }

  restart(host: HostState): void {
    host.up = true
  }

  // ---- links, partitions, holds -------------------------------------------------------------------------

  private entry(from: HostState, to: HostState): LinkEntry {
    let entry = from.links.get(to)
    if (entry === undefined) {
      entry = new LinkEntry(
        new Random(this.seedInt ^ Math.imul(from.index, 0x9e3779b1) ^ Math.imul(to.index, 0x85ebca77))
      )
      from.links.set(to, entry)
    }
    return entry
  }

  private entries(): Array<LinkEntry> {
    const out: Array<LinkEntry> = []
    for (const host of this.hosts.values()) for (const entry of host.links.values()) out.push(entry)
    return out
  }

  setDefaults(options: Link.LinkOptions): void {
    this.defaults = Link.resolve(this.defaults, options)
    for (const entry of this.entries()) {
      if (entry.options !== undefined) entry.config = Link.resolve(this.defaults, entry.options)
    }
  }

  setLink(from: HostState, to: HostState, options: Link.LinkOptions): void {
    const entry = this.entry(from, to)
    entry.options = { ...entry.options, ...options }
    entry.config = Link.resolve(this.defaults, entry.options)
  }

  resetLink(from: HostState, to: HostState): void {
    const entry = this.entry(from, to)
    entry.options = undefined
    entry.config = undefined
  }

  private config(from: HostState, to: HostState): Link.LinkConfig {
    if (from === to) return this.loopback
    return from.links.get(to)?.config ?? this.defaults
  }

  /** The MTU on the path from `host` to `address` (65535 when unlimited). */
  mtuBetween(host: HostState, address: string): number {
    const dst = isLoopback(address) || isWildcard(address) ? host : this.byAddress.get(address)
    const mtu = dst === undefined ? this.defaults.mtu : this.config(host, dst).mtu
    return Number.isFinite(mtu) ? mtu : 65535
  }

  partition(from: HostState, to: HostState): void {
    if (from !== to) this.entry(from, to).partitioned = true
  }

  repair(from: HostState, to: HostState): void {
    this.entry(from, to).partitioned = false
  }

  repairAll(): void {
    for (const entry of this.entries()) entry.partitioned = false
  }

  isPartitioned(from: HostState, to: HostState): boolean {
    return from.links.get(to)?.partitioned ?? false
  }

  hold(from: HostState, to: HostState): void {
    if (from !== to) this.entry(from, to).held = true
  }

  release(from: HostState, to: HostState): void {
    this.entry(from, to).held = false
    const now = this.now()
    const keep: Array<WirePacket> = []
    for (const packet of this.held) {
      if (packet.srcHost === from && packet.dstHost === to) {
        this.record(now, "release", packet)
        this.inFlight.set(packet, now)
        this.schedule(now, () => this.arrive(packet))
      } else {
        keep.push(packet)
      }
    }
    this.held = keep
  }

  inFlightPackets(): ReadonlyArray<InFlight> {
    const out: Array<InFlight> = []
    for (const [packet, deliverAt] of this.inFlight) out.push({ packet: publicPacket(packet), deliverAt, held: false })
    for (const packet of this.held) out.push({ packet: publicPacket(packet), deliverAt: packet.sentAt, held: true })
    return out.sort((a, b) => a.deliverAt - b.deliverAt || a.packet.id - b.packet.id)
  }

  // ---- the packet pipeline ------------------------------------------------------------------------------

  private record(time: number, kind: Trace.TraceEvent["kind"], packet: WirePacket, reason?: Trace.DropReason): void {
    this.trace.record(time, kind, this.trace.capacity > 0 ? publicPacket(packet) : packet, reason, packet.traceCode)
  }

  private drop(time: number, packet: WirePacket, reason: Trace.DropReason): void {
    this.stats.dropped[reason]++
    this.record(time, "drop", packet, reason)
  }

  /** Build a packet from `src` to `dst` (an IP literal). */
  packet(spec: PacketSpec): WirePacket {
    const { srcHost, to } = spec
    const dstHost = isLoopback(to.address) || isWildcard(to.address) ? srcHost : this.byAddress.get(to.address)
    const packet: WirePacket = {
      id: this.nextPacketId++,
      protocol: spec.protocol,
      from: { host: srcHost.name, address: spec.from.address, port: spec.from.port },
      to: { host: dstHost?.name, address: to.address, port: to.port },
      payload: spec.payload,
      flags: spec.flags ?? "",
      seq: spec.seq ?? 0,
      sentAt: this.now(),
      srcHost,
      dstHost,
      segment: spec.segment,
      unreachable: spec.unreachable,
      traceCode: 0
    }
    packet.traceCode = this.trace.packetCode(packet)
    return packet
  }

  /** Send a packet into the network: rules, then the link model, then scheduled delivery. */
  send(packet: WirePacket): void {
    const now = packet.sentAt
    this.activity++
    this.stats.sent++
    this.record(now, "send", packet)
    let extraDelay = 0
    for (const rule of this.rules) {
      const verdict = rule(publicPacket(packet))
      if (verdict._tag === "Drop") {
        this.drop(now, packet, "rule")
        return
      }
      if (verdict._tag === "Delay") {
        extraDelay += Math.max(0, verdict.millis)
        this.record(now, "delay", packet)
      }
    }
    const src = packet.srcHost
    const dst = packet.dstHost
    if (!src.up) {
      this.drop(now, packet, "host-down")
      return
    }
    if (dst === undefined) {
      this.drop(now, packet, "unreachable")
      return
    }
    const link = src === dst ? undefined : this.entry(src, dst)
    if (link?.partitioned === true) {
      this.drop(now, packet, "partition")
      return
    }
    const config = this.config(src, dst)
    const v6 = packet.to.address.includes(":")
    const size = packet.payload.byteLength + (packet.protocol === "udp" ? 8 : 20) + (v6 ? 40 : 20)
    if (size > config.mtu) {
      this.drop(now, packet, "mtu")
      return
    }
    const state = link ?? this.entry(src, dst)
    const random = state.random
    if (random.chance(config.loss)) {
      this.drop(now, packet, "loss")
      return
    }
    const copies = random.chance(config.duplicate) ? 2 : 1
    let departure = now
    if (Number.isFinite(config.bandwidth) && config.bandwidth > 0) {
      departure = Math.max(now, state.busyUntil) + (size / config.bandwidth) * 1000
      state.busyUntil = departure
    }
    for (let copy = 0; copy < copies; copy++) {
      let latency = Link.sampleLatency(config.latency, random)
      if (config.jitterMillis > 0) latency += (random.next() * 2 - 1) * config.jitterMillis
      let time = departure + Math.max(0, latency)
      if (random.chance(config.reorder)) {
        time += config.reorderDelayMillis
      } else {
        time = Math.max(time, state.lastDelivery)
        state.lastDelivery = time
      }
      // a rule's delay holds back this packet only
      time = this.quantize(time + extraDelay)
      const instance = copy === 0 ? packet : { ...packet }
      if (copy === 1) {
        this.stats.duplicated++
        this.record(now, "duplicate", instance)
      }
      this.inFlight.set(instance, time)
      this.schedule(time, () => this.arrive(instance))
    }
  }

  private quantize(time: number): number {
    const r = this.resolution
    // whole microseconds, rounded up to the resolution
    const micros = Math.round(time * 1000)
    const step = Math.round(r * 1000)
    return (Math.ceil(micros / step) * step) / 1000
  }

  private arrive(packet: WirePacket): void {
    const now = this.now()
    this.activity++
    this.inFlight.delete(packet)
    const src = packet.srcHost
    const dst = packet.dstHost
    if (dst === undefined) return
    const link = src === dst ? undefined : src.links.get(dst)
    if (link !== undefined) {
      if (link.partitioned) {
        this.drop(now, packet, "partition")
        return
      }
      if (link.held) {
        this.held.push(packet)
        this.record(now, "hold", packet)
        return
      }
    }
    if (!dst.up) {
      this.drop(now, packet, "host-down")
      return
    }
    if (packet.protocol === "udp") {
      const binding = dst.udp.get(packet.to.port)
      if (binding === undefined) {
        this.drop(now, packet, "no-socket")
        packet.unreachable?.()
        return
      }
      this.stats.delivered++
      this.record(now, "deliver", packet)
      binding.receive(packet)
    } else {
      this.stats.delivered++
      this.record(now, "deliver", packet)
      this.tcp?.receive(dst, packet)
    }
  }
}

const publicPacket = (packet: WirePacket): Trace.Packet => ({
  id: packet.id,
  protocol: packet.protocol,
  from: packet.from,
  to: packet.to,
  payload: packet.payload,
  flags: packet.flags,
  seq: packet.seq,
  sentAt: packet.sentAt
})
