/**
 * A deterministic simulated network behind diesel's `Network` seam.
 *
 * Provide `SimNetwork.layer(...)` to a test and every bind, listen, connect and name lookup made through
 * `@diesel/core`'s `Network` (so everything in `@diesel/udp` and `@diesel/tcp`) happens on simulated hosts,
 * in simulated time (driven by `TestClock`), reproducibly from a seed.
 *
 * @example
 * ```ts
 * import { Network } from "@diesel/core"
 * import { SimNetwork } from "@diesel/sim"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const sim = yield* SimNetwork.SimNetwork
 *   yield* sim.addHost("server")
 *   yield* sim.link("local", "server", { latency: "20 millis", loss: 0.1 })
 *   const network = yield* Network.Network
 *   // ... bind on "server" with SimNetwork.onHost("server"), talk to it from the default host "local"
 * }).pipe(Effect.provide(SimNetwork.layer({ seed: 42 })))
 * ```
 *
 * @since 0.1.0
 */
import { Network } from "@diesel/core"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Dns from "effect/net/Dns"
import * as NetAddress from "effect/net/NetAddress"
import type * as Scope from "effect/Scope"
import * as DatagramSocket from "effect/socket/DatagramSocket"
import * as Socket from "effect/socket/Socket"
import type { TestClock } from "effect/testing"
import { SimSystemError } from "./internal/Errors.js"
import * as SimDatagram from "./internal/SimDatagram.js"
import * as SimTcp from "./internal/SimTcp.js"
import { type HostState, type InFlight, type Stats, World } from "./internal/World.js"
import * as Link from "./Link.js"
import type * as Rule from "./Rule.js"
import * as SimClock from "./SimClock.js"
import type * as Trace from "./Trace.js"

/**
 * The simulated host the current fiber runs on. `undefined` means the simulation's default host.
 *
 * @since 0.1.0
 */
export const CurrentHost = Context.Reference<string | undefined>("@diesel/sim/CurrentHost", {
  defaultValue: () => undefined
})

/**
 * Run `effect` on simulated host `host`: its binds, listens and connects happen there. Fibers it forks
 * stay on that host.
 *
 * @example
 * ```ts
 * const server = SimNetwork.onHost("server")(echoServer)
 * ```
 *
 * @since 0.1.0
 */
export const onHost: {
  (host: string): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(effect: Effect.Effect<A, E, R>, host: string): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(effect: Effect.Effect<A, E, R>, host: string): Effect.Effect<A, E, R> =>
    Effect.provideService(effect, CurrentHost, host)
)

/**
 * Addresses of a host.
 *
 * @since 0.1.0
 */
export interface HostOptions {
  /** IPv4 addresses; default one `10.x.y.z` derived from the host's creation order. */
  readonly ipv4?: ReadonlyArray<string> | undefined
  /** IPv6 addresses; default one `fd00::<n>`. */
  readonly ipv6?: ReadonlyArray<string> | undefined
}

/**
 * A host as the simulation knows it.
 *
 * @since 0.1.0
 */
export interface HostInfo {
  readonly name: string
  readonly ipv4: ReadonlyArray<string>
  readonly ipv6: ReadonlyArray<string>
  readonly up: boolean
}

/**
 * TCP behaviour of the simulation.
 *
 * @since 0.1.0
 */
export interface TcpOptions {
  /**
   * A connection whose data (or keep-alive probe) stays unacknowledged this long fails with a
   * `SocketError` whose cause has code `ETIMEDOUT`; a connect that gets no answer fails the same way.
   * Default 30 seconds.
   */
  readonly connectionTimeout?: Duration.Input | undefined
  /** First retransmission timeout; it then adapts to the measured round trip. Default 1 second. */
  readonly initialRto?: Duration.Input | undefined
  /** Default 200 ms. */
  readonly minRto?: Duration.Input | undefined
  /** Backoff cap. Default 10 seconds. */
  readonly maxRto?: Duration.Input | undefined
  /** Probe an idle connection this often, so that a partition ends it even when nobody writes. Default off. */
  readonly keepAlive?: Duration.Input | undefined
  /** Bytes a writer may queue before `write` waits. Default 256 KiB. */
  readonly sendBuffer?: number | undefined
  /** Receive window: bytes buffered for a reader before the sender must wait. Default 256 KiB. */
  readonly receiveBuffer?: number | undefined
}

/**
 * Options of a simulation.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * The seed of every random choice. Default: the `DIESEL_SIM_SEED` environment variable, else a fresh
   * random seed (printed when the program using the simulation fails, so the run can be replayed).
   */
  readonly seed?: number | string | undefined
  /** Hosts to create up front: names, or names with addresses. */
  readonly hosts?: ReadonlyArray<string> | Readonly<Record<string, HostOptions>> | undefined
  /** The host fibers run on when no `onHost` says otherwise. Default `"local"`. */
  readonly defaultHost?: string | undefined
  /** The default link between any two hosts. Default: perfect (no latency, no loss). */
  readonly link?: Link.LinkOptions | undefined
  /** The link from a host to itself (127.0.0.1, ::1, its own addresses). Default: perfect. */
  readonly loopback?: Link.LinkOptions | undefined
  readonly tcp?: TcpOptions | undefined
  /**
   * Delivery times are rounded up to a multiple of this. Default one microsecond. A coarser resolution
   * (say 1 ms) batches deliveries into fewer clock wake-ups, which makes very large simulations faster.
   */
  readonly resolution?: Duration.Input | undefined
  /** How many trace events to keep in memory (the hash covers all of them). Default 10,000. */
  readonly traceCapacity?: number | undefined
  /**
   * `"test"` (the default): time is the `Clock` in use, usually `TestClock`, which the test advances.
   * `"virtual"`: provide a `SimClock` with the simulation, so that time advances by itself whenever every
   * fiber waits; no `TestClock.adjust` is needed and large simulations run much faster.
   */
  readonly clock?: "test" | "virtual" | undefined
  /** Print the seed when the scope that owns the simulation closes with a failure. Default `true`. */
  readonly reportSeedOnFailure?: boolean | undefined
}

/**
 * A running simulation: the `Network` it provides and its control panel.
 *
 * @since 0.1.0
 */
export interface Sim {
  readonly seed: number | string
  /** The `NetworkService` to hand to `Network.provide`. */
  readonly network: Network.NetworkService
  readonly defaultHost: string

  /** Add a host (idempotent); fails with a defect on a duplicate address. */
  readonly addHost: (name: string, options?: HostOptions) => Effect.Effect<HostInfo>
  readonly host: (name: string) => Effect.Effect<HostInfo>
  readonly hosts: Effect.Effect<ReadonlyArray<HostInfo>>

  /** Change the default link model. */
  readonly setDefaultLink: (options: Link.LinkOptions) => Effect.Effect<void>
  /** Set the link model between `a` and `b`, both directions (merged over earlier settings). */
  readonly link: (a: string, b: string, options: Link.LinkOptions) => Effect.Effect<void>
  /** Set the link model from `from` to `to` only. */
  readonly linkOneWay: (from: string, to: string, options: Link.LinkOptions) => Effect.Effect<void>
  /** Forget per-link settings between `a` and `b` (back to the default link). */
  readonly resetLink: (a: string, b: string) => Effect.Effect<void>

  /** Cut every link between the hosts of `a` and the hosts of `b`, both ways; packets in flight are lost. */
  readonly partition: (a: string | ReadonlyArray<string>, b: string | ReadonlyArray<string>) => Effect.Effect<void>
  /** Cut the links from `from` to `to` only. */
  readonly partitionOneWay: (
    from: string | ReadonlyArray<string>,
    to: string | ReadonlyArray<string>
  ) => Effect.Effect<void>
  readonly repair: (a: string | ReadonlyArray<string>, b: string | ReadonlyArray<string>) => Effect.Effect<void>
  readonly repairOneWay: (
    from: string | ReadonlyArray<string>,
    to: string | ReadonlyArray<string>
  ) => Effect.Effect<void>
  readonly repairAll: Effect.Effect<void>

  /** Hold the links between `a` and `b`: packets wait at the far end until `release`. */
  readonly hold: (a: string, b: string) => Effect.Effect<void>
  readonly holdOneWay: (from: string, to: string) => Effect.Effect<void>
  /** Release held links; the waiting packets are delivered now, in order. */
  readonly release: (a: string, b: string) => Effect.Effect<void>
  readonly releaseOneWay: (from: string, to: string) => Effect.Effect<void>

  /**
   * Crash a host: its sockets die, the programs `spawn`ed on it are interrupted, and it drops all
   * traffic until `restart`. With `reset` (the default) its TCP peers receive an RST, as when a process
   * dies; `reset: false` models a power cut, which peers only notice by timeouts.
   */
  readonly crash: (host: string, options?: { readonly reset?: boolean | undefined }) => Effect.Effect<void>
  /** Bring a crashed host back and re-run the programs spawned on it. */
  readonly restart: (host: string) => Effect.Effect<void>
  /** Run `program` on `host` as the host's software: interrupted by `crash`, started again by `restart`. */
  readonly spawn: <E>(host: string, program: Effect.Effect<void, E>) => Effect.Effect<void>

  /** Install a per-packet rule for the lifetime of the current scope. */
  readonly rule: (rule: Rule.Rule) => Effect.Effect<void, never, Scope.Scope>

  /** Packets sent and not yet delivered or dropped, including held ones. */
  readonly inFlight: Effect.Effect<ReadonlyArray<InFlight>>
  /** The kept trace events, oldest first. */
  readonly trace: Effect.Effect<ReadonlyArray<Trace.TraceEvent>>
  /** A hash of every trace event so far: equal for equal runs. */
  readonly traceHash: Effect.Effect<string>
  readonly stats: Effect.Effect<Stats>

  /**
   * Run `effect` while advancing the `TestClock` until it completes: to each next network event, or by
   * `step` (default 100 ms) when the network is idle, failing with a defect after `timeout` of simulated
   * time (default 1 hour). Under any other clock (a `SimClock` advances by itself) it just runs `effect`.
   */
  readonly run: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    options?: { readonly step?: Duration.Input | undefined; readonly timeout?: Duration.Input | undefined }
  ) => Effect.Effect<A, E, R>
  /**
   * Advance time until nothing is scheduled on the network (no packet in flight, held ones excepted, and no
   * TCP timer) or `max` (default 1 hour) has passed, letting the fibers that packets wake run at each step.
   * Under `TestClock` it adjusts the clock; under any other clock it sleeps to each next event.
   */
  readonly runUntilIdle: (options?: { readonly max?: Duration.Input | undefined }) => Effect.Effect<void>
}

/**
 * The simulation as a service, provided by `layer`.
 *
 * @since 0.1.0
 */
export class SimNetwork extends Context.Service<SimNetwork, Sim>()("@diesel/sim/SimNetwork") {}

export type { InFlight, Stats }

const millis = (input: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(input))

const canonical = (address: string): string => {
  const parsed = NetAddress.ipFromString(address)
  if (parsed._tag === "Failure") throw new Error(`invalid IP address for a simulated host: ${address}`)
  return NetAddress.formatIp(parsed.success)
}

const freshSeed = (): number => {
  const fromEnv = typeof process === "undefined" ? undefined : process.env.DIESEL_SIM_SEED
  if (fromEnv !== undefined && fromEnv !== "") {
    const asNumber = Number(fromEnv)
    return Number.isSafeInteger(asNumber) ? asNumber : Number.parseInt(fromEnv, 36) || 0
  }
  const bytes = new Uint32Array(1)
  globalThis.crypto.getRandomValues(bytes)
  return (bytes[0] ?? 0) & 0x7fffffff
}

const tcpConfig = (options: TcpOptions | undefined): SimTcp.TcpConfig => {
  const base = SimTcp.defaultConfig
  return {
    connectionTimeout:
      options?.connectionTimeout === undefined ? base.connectionTimeout : millis(options.connectionTimeout),
    initialRto: options?.initialRto === undefined ? base.initialRto : millis(options.initialRto),
    minRto: options?.minRto === undefined ? base.minRto : millis(options.minRto),
    maxRto: options?.maxRto === undefined ? base.maxRto : millis(options.maxRto),
    keepAlive: options?.keepAlive === undefined ? base.keepAlive : millis(options.keepAlive),
    sendBuffer: options?.sendBuffer ?? base.sendBuffer,
    receiveBuffer: options?.receiveBuffer ?? base.receiveBuffer
  }
}

const names = (input: string | ReadonlyArray<string>): ReadonlyArray<string> =>
  typeof input === "string" ? [input] : input

// Event times are whole microseconds; stepping half a microsecond past one absorbs floating point error.
const halfTick = 0.0005

const isTestClock = (clock: Clock.Clock): clock is TestClock.TestClock => "adjust" in clock

/**
 * Build a simulation owned by the current scope.
 *
 * @since 0.1.0
 */
export const make = Effect.fn("SimNetwork.make")(function* (options: Options = {}) {
  const seed = options.seed ?? freshSeed()
  const clock = yield* Clock.Clock
  const runFork = yield* FiberSet.makeRuntime<never, void, never>()
  const world = new World({
    seed,
    link: Link.resolve(Link.perfect, options.link),
    loopback: Link.resolve(Link.perfect, options.loopback),
    traceCapacity: options.traceCapacity ?? 10_000,
    resolution: options.resolution === undefined ? 0.001 : millis(options.resolution),
    clock,
    fork: (effect) => runFork(effect),
    timer: SimClock.isSimClock(clock)
      ? (time, fire) => {
          clock.schedule(time, fire)
        }
      : undefined
  })
  SimTcp.install(world)
  SimTcp.configure(world, tcpConfig(options.tcp))
  const defaultHost = options.defaultHost ?? "local"

  const addHostSync = (name: string, hostOptions?: HostOptions): HostState =>
    world.addHost(name, {
      ipv4: hostOptions?.ipv4?.map(canonical),
      ipv6: hostOptions?.ipv6?.map(canonical)
    })
  addHostSync(defaultHost)
  const initial = options.hosts
  if (initial !== undefined) {
    if (Array.isArray(initial)) for (const name of initial as ReadonlyArray<string>) addHostSync(name)
    else
      for (const [name, hostOptions] of Object.entries(initial as Record<string, HostOptions>))
        addHostSync(name, hostOptions)
  }

  const info = (host: HostState): HostInfo => ({ name: host.name, ipv4: host.v4, ipv6: host.v6, up: host.up })

  const currentHost: Effect.Effect<HostState> = Effect.gen(function* () {
    const name = yield* CurrentHost
    return world.host(name ?? defaultHost)
  })

  const lookupSync = (host: string, family: "IPv4" | "IPv6" | undefined): ReadonlyArray<NetAddress.IpAddress> => {
    const literal = NetAddress.ipFromString(host)
    if (literal._tag === "Success") return [literal.success]
    let v4: ReadonlyArray<string>
    let v6: ReadonlyArray<string>
    if (host === "localhost") {
      v4 = ["127.0.0.1"]
      v6 = ["::1"]
    } else {
      const known = world.hosts.get(host)
      if (known === undefined) return []
      v4 = known.v4
      v6 = known.v6
    }
    const chosen = family === "IPv4" ? v4 : family === "IPv6" ? v6 : [...v4, ...v6]
    return chosen.map((address) => NetAddress.ipFromStringUnsafe(address))
  }

  const lookup: Network.NetworkService["lookup"] = (host, lookupOptions) =>
    Effect.suspend(() => {
      const found = lookupSync(host, lookupOptions?.family)
      return found.length > 0
        ? Effect.succeed(found)
        : Effect.fail(new Dns.DnsError({ reason: "NotFound", method: "lookup", hostname: host }))
    })

  const resolveString = (host: string, family: "ipv4" | "ipv6" | undefined): string | undefined => {
    const found = lookupSync(host, family === "ipv4" ? "IPv4" : family === "ipv6" ? "IPv6" : undefined)
    const first = found[0]
    return first === undefined ? undefined : NetAddress.formatIp(first)
  }

  // a bind or listen address given as a name (the host's own, or "localhost") resolves like a connect
  const localName = (name: string | undefined, family: "ipv4" | "ipv6" | undefined): string | undefined =>
    name === undefined || name === "" || NetAddress.ipFromString(name)._tag === "Success"
      ? name
      : (resolveString(name, family) ?? name)

  const bindByAddress = (datagramOptions: Network.DatagramOptions): Network.DatagramOptions => {
    const bind = datagramOptions.bind
    return bind === undefined
      ? datagramOptions
      : { ...datagramOptions, bind: { ...bind, address: localName(bind.address, datagramOptions.family) } }
  }

  const resolveDatagramAddress =
    (host: HostState, family: "ipv4" | "ipv6" | undefined) =>
    (name: string): Effect.Effect<string, DatagramSocket.DatagramSocketError> => {
      const address = resolveString(name, family)
      return address === undefined
        ? Effect.fail(
            new DatagramSocket.DatagramSocketError({
              reason: new DatagramSocket.DatagramSocketOpenError({
                kind: "Unknown",
                cause: new SimSystemError("ENOTFOUND", "getaddrinfo", host.name, name)
              })
            })
          )
        : Effect.succeed(address)
    }

  const network: Network.NetworkService = {
    datagramSocket: (datagramOptions) =>
      Effect.flatMap(currentHost, (host) =>
        SimDatagram.make(
          world,
          host,
          bindByAddress(datagramOptions),
          resolveDatagramAddress(host, datagramOptions.family)
        )
      ),
    openDatagram: (datagramOptions, events) =>
      Effect.flatMap(currentHost, (host) =>
        Effect.acquireRelease(
          SimDatagram.open(
            world,
            host,
            bindByAddress(datagramOptions),
            resolveDatagramAddress(host, datagramOptions.family),
            events
          ),
          (backing) => Effect.sync(backing.close)
        )
      ),
    listen: (listenOptions) =>
      Effect.flatMap(currentHost, (host) =>
        SimTcp.listen(host, { ...listenOptions, host: localName(listenOptions.host, undefined) })
      ),
    connect: (connectOptions) =>
      Effect.map(currentHost, (host) =>
        SimTcp.connect(world, host, connectOptions, (name, family) => {
          const address = resolveString(name, family)
          return address === undefined
            ? Effect.fail(
                new Socket.SocketError({
                  reason: new Socket.SocketOpenError({
                    kind: "Unknown",
                    cause: new SimSystemError("ENOTFOUND", "getaddrinfo", host.name, name)
                  })
                })
              )
            : Effect.succeed(address)
        })
      ),
    lookup
  }

  // programs spawned on hosts
  const programs = new Map<string, Array<Effect.Effect<void, unknown>>>()
  const running = new Map<string, Array<Fiber.Fiber<void, unknown>>>()
  const startProgram = (host: string, program: Effect.Effect<void, unknown>): void => {
    const fiber = runFork(
      program.pipe(
        onHost(host),
        Network.provide(network),
        Effect.ignoreCause({ log: "Unhandled", message: `program on simulated host ${host} failed` })
      )
    )
    const list = running.get(host) ?? []
    list.push(fiber)
    running.set(host, list)
  }

  const forEachLink = (
    a: string | ReadonlyArray<string>,
    b: string | ReadonlyArray<string>,
    f: (from: HostState, to: HostState) => void
  ) =>
    Effect.sync(() => {
      for (const x of names(a)) for (const y of names(b)) f(world.host(x), world.host(y))
    })
  /** Apply a one-way link operation in both directions. */
  const bothWays =
    (f: (from: HostState, to: HostState) => void) =>
    (x: HostState, y: HostState): void => {
      f(x, y)
      f(y, x)
    }

  // Let fibers woken by deliveries run: yield until no packet moved for a few scheduler rounds.
  const settle: Effect.Effect<void> = Effect.gen(function* () {
    let quiet = 0
    for (let round = 0; round < 1000 && quiet < 3; round++) {
      const before = world.activity
      yield* Effect.yieldNow
      const next = world.nextEventTime()
      quiet =
        world.activity === before && (next === undefined || next > clock.currentTimeMillisUnsafe()) ? quiet + 1 : 0
    }
  })

  const advance = (testClock: TestClock.TestClock, limit: number): Effect.Effect<boolean> =>
    Effect.suspend(() => {
      const now = clock.currentTimeMillisUnsafe()
      const next = world.nextEventTime()
      if (next === undefined || next > limit) return Effect.succeed(false)
      return Effect.as(testClock.adjust(Duration.millis(Math.max(0, next - now) + halfTick)), true)
    })

  const sim: Sim = {
    seed,
    network,
    defaultHost,
    addHost: (name, hostOptions) => Effect.sync(() => info(addHostSync(name, hostOptions))),
    host: (name) => Effect.sync(() => info(world.host(name))),
    hosts: Effect.sync(() => [...world.hosts.values()].map(info)),
    setDefaultLink: (linkOptions) => Effect.sync(() => world.setDefaults(linkOptions)),
    link: (a, b, linkOptions) =>
      Effect.sync(() => {
        world.setLink(world.host(a), world.host(b), linkOptions)
        world.setLink(world.host(b), world.host(a), linkOptions)
      }),
    linkOneWay: (from, to, linkOptions) =>
      Effect.sync(() => world.setLink(world.host(from), world.host(to), linkOptions)),
    resetLink: (a, b) =>
      Effect.sync(() => {
        world.resetLink(world.host(a), world.host(b))
        world.resetLink(world.host(b), world.host(a))
      }),
    partition: (a, b) =>
      forEachLink(
        a,
        b,
        bothWays((x, y) => world.partition(x, y))
      ),
    partitionOneWay: (from, to) => forEachLink(from, to, (x, y) => world.partition(x, y)),
    repair: (a, b) =>
      forEachLink(
        a,
        b,
        bothWays((x, y) => world.repair(x, y))
      ),
    repairOneWay: (from, to) => forEachLink(from, to, (x, y) => world.repair(x, y)),
    repairAll: Effect.sync(() => world.repairAll()),
    hold: (a, b) =>
      forEachLink(
        a,
        b,
        bothWays((x, y) => world.hold(x, y))
      ),
    holdOneWay: (from, to) => forEachLink(from, to, (x, y) => world.hold(x, y)),
    release: (a, b) =>
      forEachLink(
        a,
        b,
        bothWays((x, y) => world.release(x, y))
      ),
    releaseOneWay: (from, to) => forEachLink(from, to, (x, y) => world.release(x, y)),
    crash: (name, crashOptions) =>
      Effect.suspend(() => {
        world.crash(world.host(name), crashOptions?.reset ?? true)
        const fibers = running.get(name) ?? []
        running.delete(name)
        return Fiber.interruptAll(fibers)
      }),
    restart: (name) =>
      Effect.sync(() => {
        const host = world.host(name)
        if (host.up) return
        world.restart(host)
        for (const program of programs.get(name) ?? []) startProgram(name, program)
      }),
    spawn: (name, program) =>
      Effect.sync(() => {
        const host = world.host(name)
        const list = programs.get(name) ?? []
        list.push(program)
        programs.set(name, list)
        if (host.up) startProgram(name, program)
      }),
    rule: (rule) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          world.rules.push(rule)
        }),
        () =>
          Effect.sync(() => {
            const index = world.rules.indexOf(rule)
            if (index !== -1) world.rules.splice(index, 1)
          })
      ),
    inFlight: Effect.sync(() => world.inFlightPackets()),
    trace: Effect.sync(() => world.trace.snapshot()),
    traceHash: Effect.sync(() => world.trace.hash()),
    stats: Effect.sync(() => ({ ...world.stats, dropped: { ...world.stats.dropped } })),
    run: (effect, runOptions) =>
      Effect.gen(function* () {
        const current = yield* Clock.Clock
        if (!isTestClock(current)) return yield* effect
        const step = millis(runOptions?.step ?? "100 millis")
        const deadline = current.currentTimeMillisUnsafe() + millis(runOptions?.timeout ?? "1 hour")
        const fiber = yield* Effect.forkChild(effect, { startImmediately: true })
        while (fiber.pollUnsafe() === undefined) {
          const now = current.currentTimeMillisUnsafe()
          if (now >= deadline) {
            yield* Fiber.interrupt(fiber)
            return yield* Effect.die(
              new Error(`simulation did not complete within ${runOptions?.timeout ?? "1 hour"} (seed ${seed})`)
            )
          }
          const next = world.nextEventTime()
          const delta = next === undefined ? step : Math.min(step, Math.max(0, next - now) + halfTick)
          yield* current.adjust(Duration.millis(Math.min(delta, deadline - now)))
        }
        return yield* Fiber.join(fiber)
      }),
    runUntilIdle: (idleOptions) =>
      Effect.gen(function* () {
        const current = yield* Clock.Clock
        const limit = current.currentTimeMillisUnsafe() + millis(idleOptions?.max ?? "1 hour")
        if (isTestClock(current)) {
          do {
            yield* settle
          } while (yield* advance(current, limit))
          return
        }
        // any other clock (SimClock, the live clock): sleep to the next event
        while (true) {
          yield* settle
          const next = world.nextEventTime()
          const now = current.currentTimeMillisUnsafe()
          if (next === undefined || next > limit) return
          yield* Effect.sleep(Duration.millis(Math.max(0, next - now) + halfTick))
        }
      })
  }

  if (options.reportSeedOnFailure ?? true) {
    yield* Effect.addFinalizer((exit) =>
      Exit.isFailure(exit) && !Exit.hasInterrupts(exit)
        ? Effect.sync(() => {
            console.error(
              `[diesel/sim] the simulation failed with seed ${JSON.stringify(seed)}; replay it with seed: ${JSON.stringify(seed)} or DIESEL_SIM_SEED=${seed}`
            )
          })
        : Effect.void
    )
  }

  return sim
})

/**
 * A Layer that provides the simulation as `SimNetwork` and as the `Network` every transport uses.
 *
 * @example
 * ```ts
 * it.effect("echo", () => program.pipe(Effect.provide(SimNetwork.layer({ seed: 1, hosts: ["server"] }))))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<SimNetwork> => {
  const simulation = Layer.effectContext(
    Effect.map(make(options), (sim) => Context.make(SimNetwork, sim).pipe(Context.add(Network.Network, sim.network)))
  )
  return options?.clock === "virtual" ? simulation.pipe(Layer.provideMerge(SimClock.layer)) : simulation
}

/**
 * A way to run an effect on one network implementation.
 *
 * @since 0.1.0
 */
export interface Provider {
  readonly name: "node" | "sim"
  readonly provide: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/**
 * The two networks a shared test suite runs on: the Node network (real sockets) and a fresh simulation
 * (perfect links by default, so behaviour defined for both is the same).
 *
 * @example
 * ```ts
 * for (const { name, provide } of SimNetwork.providers()) {
 *   it.live(`UDP echo on ${name}`, () => echoCase.pipe(provide))
 * }
 * ```
 *
 * @since 0.1.0
 */
export const providers = (options?: Options): ReadonlyArray<Provider> => [
  { name: "node", provide: (effect) => Network.provide(effect, Network.node) },
  { name: "sim", provide: (effect) => Effect.provide(effect, layer(options)) }
]
