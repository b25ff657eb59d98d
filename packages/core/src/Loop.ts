/**
 * Loops: named, listed fibers. diesel's `label()` and `print_greenlet_stacks`, on Effect fibers.
 *
 * Every conversation and every loop started through `ConnectedLoop` is registered while it runs, with a
 * label, its kind, its connection and its parent, so `Loop.list` can answer "what is running and since
 * when". `Loop.label(name)` names the running loop: the registry entry and the `loop` log annotation.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as References from "effect/References"
import * as Connection from "./Connection.js"

/**
 * What a registered fiber is.
 *
 * @since 0.1.0
 */
export type Kind = "conversation" | "child" | "loop" | "keepAlive" | "service"

/**
 * A live registry entry.
 *
 * @since 0.1.0
 */
export interface Entry {
  readonly id: number
  label: string
  readonly kind: Kind
  readonly fiberId: number
  readonly parentId: number | undefined
  readonly connectionId: number | undefined
  readonly peer: string | undefined
  readonly startedAt: number
  /** For keep-alive loops: how many times the body has ended and been restarted. */
  deaths: number
}

/**
 * A snapshot of a live loop, with its age.
 *
 * @since 0.1.0
 */
export interface Info {
  readonly id: number
  readonly label: string
  readonly kind: Kind
  readonly fiberId: number
  readonly parentId: number | undefined
  readonly connectionId: number | undefined
  readonly peer: string | undefined
  readonly ageMillis: number
  readonly deaths: number
}

/**
 * The set of live loops.
 *
 * @since 0.1.0
 */
export class Registry {
  private nextId = 0
  private liveConversations = 0
  private idleWaiters: Array<() => void> = []
  readonly entries = new Map<number, Entry>()

  add(entry: Omit<Entry, "id">): Entry {
    return this.register((id) => ({ ...entry, id }))
  }

  /** Add the entry `make` builds with a fresh id. */
  register<E extends Entry>(make: (id: number) => E): E {
    const entry = make(++this.nextId)
    this.entries.set(entry.id, entry)
    if (entry.kind === "conversation") this.liveConversations++
    return entry
  }

  delete(entry: Entry): void {
    if (!this.entries.delete(entry.id) || entry.kind !== "conversation") return
    if (--this.liveConversations === 0 && this.idleWaiters.length > 0) {
      for (const wake of this.idleWaiters.splice(0, this.idleWaiters.length)) wake()
    }
  }

  /** Number of live conversations. */
  get conversations(): number {
    return this.liveConversations
  }

  /** Wait until no conversation is live. */
  readonly awaitNoConversations: Effect.Effect<void> = Effect.suspend(() =>
    this.liveConversations === 0
      ? Effect.void
      : Effect.callback<void>((resume) => {
          const wake = () => resume(Effect.void)
          this.idleWaiters.push(wake)
          return Effect.sync(() => {
            const index = this.idleWaiters.indexOf(wake)
            if (index >= 0) this.idleWaiters.splice(index, 1)
          })
        })
  )
}

const globalRegistry = new Registry()

/**
 * The registry loops are recorded in. One per process by default; provide another to isolate a test.
 *
 * @since 0.1.0
 */
export const CurrentRegistry = Context.Reference<Registry>("@diesel/core/Loop/Registry", {
  defaultValue: () => globalRegistry
})

/**
 * The registry entry of the running loop, if it was started through diesel.
 *
 * @since 0.1.0
 */
export const Current = Context.Reference<Entry | undefined>("@diesel/core/Loop/Current", {
  defaultValue: () => undefined
})

/**
 * Run `effect` as a registered loop of `kind`: listed by `list` while it runs, annotated in logs with its
 * label, and the parent of loops it starts.
 *
 * @since 0.1.0
 */
export const track: {
  (kind: Kind, label: string): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(effect: Effect.Effect<A, E, R>, kind: Kind, label: string): Effect.Effect<A, E, R>
} = dual(
  3,
  <A, E, R>(effect: Effect.Effect<A, E, R>, kind: Kind, label: string): Effect.Effect<A, E, R> =>
    trackWith(effect, kind, label)
)

/**
 * `track`, for runtimes built on loops (`Conversation.run`, transports): `connection` (default: the
 * current one) is recorded in the entry, and `context` adds services to the loop's context in the same
 * step as the registry entry and the log annotation (one context update per loop, not one per service).
 *
 * @since 0.1.0
 */
export const trackWith = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  kind: Kind,
  label: string,
  options?: {
    readonly connection?: Connection.Connection | undefined
    readonly context?: (<S>(context: Context.Context<S>) => Context.Context<S>) | undefined
  }
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    const registry = fiber.getRef(CurrentRegistry)
    const parent = fiber.getRef(Current)
    const connection = options?.connection ?? fiber.getRef(Connection.Current)
    const startedAt = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
    const entry = registry.register(
      (id) => new TrackedEntry(id, label, kind, fiber.id, parent?.id, connection, startedAt)
    )
    const annotations = { ...fiber.getRef(References.CurrentLogAnnotations), loop: label }
    const extra = options?.context
    return Effect.updateContext<A, E, R, R>(
      Effect.onExit(effect, () => Effect.sync(() => registry.delete(entry))),
      (context: Context.Context<R>): Context.Context<R> => {
        const tracked = Context.add(Context.add(context, References.CurrentLogAnnotations, annotations), Current, entry)
        return extra === undefined ? tracked : extra(tracked)
      }
    )
  })

/**
 * A loop entered with `enterUnsafe`: `leave` restores the fiber's context and removes the entry.
 *
 * @since 0.1.0
 */
export class Entered {
  constructor(
    readonly registry: Registry,
    readonly entry: Entry,
    private readonly outer: Context.Context<never>
  ) {}

  leave(fiber: Fiber.Fiber<unknown, unknown>): void {
    fiber.setContext(this.outer)
    this.registry.delete(this.entry)
  }
}

/**
 * `trackWith` for runtimes that run their own continuation after the loop (`Conversation.run`): registers
 * the running fiber as a loop and switches its context to the tracked one right away, wrapping nothing, so
 * a suspended loop keeps no extra frames; call `leave` when the loop's body is done.
 *
 * @since 0.1.0
 */
export const enterUnsafe = (
  fiber: Fiber.Fiber<unknown, unknown>,
  kind: Kind,
  label: string,
  options?: {
    readonly connection?: Connection.Connection | undefined
    readonly context?: (<S>(context: Context.Context<S>) => Context.Context<S>) | undefined
  }
): Entered => {
  const registry = fiber.getRef(CurrentRegistry)
  const parent = fiber.getRef(Current)
  const connection = options?.connection ?? fiber.getRef(Connection.Current)
  const startedAt = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
  const entry = registry.register(
    (id) => new TrackedEntry(id, label, kind, fiber.id, parent?.id, connection, startedAt)
  )
  const outer = fiber.context
  const annotations = { ...fiber.getRef(References.CurrentLogAnnotations), loop: label }
  const tracked = Context.add(Context.add(outer, References.CurrentLogAnnotations, annotations), Current, entry)
  const extra = options?.context
  fiber.setContext(extra === undefined ? tracked : extra(tracked))
  return new Entered(registry, entry, outer)
}

/** A registry entry; the peer is formatted when first read, not for every loop started. */
class TrackedEntry implements Entry {
  deaths = 0
  private formattedPeer: string | undefined = undefined
  readonly connectionId: number | undefined

  constructor(
    readonly id: number,
    public label: string,
    readonly kind: Kind,
    readonly fiberId: number,
    readonly parentId: number | undefined,
    private readonly connection: Connection.Connection | undefined,
    readonly startedAt: number
  ) {
    this.connectionId = connection?.id
  }

  get peer(): string | undefined {
    if (this.connection === undefined) return undefined
    if (this.formattedPeer === undefined) this.formattedPeer = Connection.formatAddress(this.connection.remoteAddress)
    return this.formattedPeer
  }
}

/**
 * Name the running loop: its registry entry and its `loop` log annotation from here on.
 *
 * @example
 * ```ts
 * import { Loop } from "@diesel/core"
 * import { Effect } from "effect"
 *
 * const worker = Effect.gen(function* () {
 *   yield* Loop.label("heartbeat")
 *   yield* Effect.logInfo("started") // logged with loop=heartbeat
 * })
 * ```
 *
 * @since 0.1.0
 */
export const label = (name: string): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    const entry = fiber.getRef(Current)
    if (entry !== undefined) entry.label = name
    const annotations = fiber.getRef(References.CurrentLogAnnotations)
    fiber.setContext(Context.add(fiber.context, References.CurrentLogAnnotations, { ...annotations, loop: name }))
    return Effect.void
  })

/**
 * The label of the running loop, if it is registered.
 *
 * @since 0.1.0
 */
export const currentLabel: Effect.Effect<string | undefined> = Current.use((entry) => Effect.succeed(entry?.label))

/**
 * Every live loop and conversation, oldest first.
 *
 * @since 0.1.0
 */
export const list: Effect.Effect<ReadonlyArray<Info>> = Effect.withFiber((fiber) => {
  const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
  const out: Array<Info> = []
  for (const entry of fiber.getRef(CurrentRegistry).entries.values()) {
    out.push({
      id: entry.id,
      label: entry.label,
      kind: entry.kind,
      fiberId: entry.fiberId,
      parentId: entry.parentId,
      connectionId: entry.connectionId,
      peer: entry.peer,
      ageMillis: now - entry.startedAt,
      deaths: entry.deaths
    })
  }
  return Effect.succeed(out)
})

/**
 * `list` as a table, one loop per line, children indented under their parents.
 *
 * @since 0.1.0
 */
export const render: Effect.Effect<string> = Effect.map(list, (infos) => {
  const byParent = new Map<number | undefined, Array<Info>>()
  const ids = new Set(infos.map((info) => info.id))
  for (const info of infos) {
    const parent = info.parentId !== undefined && ids.has(info.parentId) ? info.parentId : undefined
    const siblings = byParent.get(parent) ?? []
    siblings.push(info)
    byParent.set(parent, siblings)
  }
  const lines: Array<string> = [`${infos.length} live loop(s)`]
  const walk = (parent: number | undefined, depth: number): void => {
    for (const info of byParent.get(parent) ?? []) {
      const peer = info.peer === undefined ? "" : ` peer=${info.peer}`
      const deaths = info.deaths > 0 ? ` deaths=${info.deaths}` : ""
      lines.push(
        `${"  ".repeat(depth)}#${info.id} ${info.kind} "${info.label}" fiber=${info.fiberId} age=${info.ageMillis}ms${peer}${deaths}`
      )
      walk(info.id, depth + 1)
    }
  }
  walk(undefined, 0)
  return lines.join("\n")
})
