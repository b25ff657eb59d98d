/**
 * Pub/sub over one shared subscriber connection (diesel's RedisSubHub): channel, pattern and sharded
 * subscriptions as Streams. Subscriptions are added and removed at run time as streams start and end;
 * the server-side SUBSCRIBE is sent for the first local subscriber of a channel and UNSUBSCRIBE after the
 * last one. After a reconnection every active subscription is restored (messages published while
 * disconnected are lost, as with any Redis pub/sub client).
 *
 * @example
 * ```ts
 * const hub = yield* RedisPubSub.RedisPubSub
 * yield* hub.subscribe("news").pipe(
 *   Stream.take(3),
 *   Stream.runForEach((m) => Console.log(m.channel, m.payload))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Driver from "./internal/driver.js"
import * as RedisClient from "./RedisClient.js"
import { type RedisError, RedisReplyError } from "./RedisError.js"
import * as Resp from "./Resp.js"

/**
 * A message received on a subscription.
 *
 * @since 0.1.0
 */
export interface Message {
  /** The channel the message was published on. */
  readonly channel: string
  /** The pattern that matched, for pattern subscriptions. */
  readonly pattern: string | undefined
  readonly payload: string
}

/**
 * Kinds of subscription: channels (SUBSCRIBE), glob patterns (PSUBSCRIBE), shard channels (SSUBSCRIBE,
 * Redis 7+).
 *
 * @since 0.1.0
 */
export type Kind = "channel" | "pattern" | "shard"

/**
 * The hub.
 *
 * @since 0.1.0
 */
export interface RedisPubSubService {
  /** Messages published on any of the channels, for as long as the stream runs. */
  readonly subscribe: (...channels: ReadonlyArray<string>) => Stream.Stream<Message, RedisError>
  /** Messages on channels matching any of the glob patterns. */
  readonly psubscribe: (...patterns: ReadonlyArray<string>) => Stream.Stream<Message, RedisError>
  /** Messages on shard channels (SSUBSCRIBE; Redis 7+). */
  readonly ssubscribe: (...channels: ReadonlyArray<string>) => Stream.Stream<Message, RedisError>
  /** The server-side subscriptions currently held. */
  readonly active: Effect.Effect<ReadonlyArray<{ readonly kind: Kind; readonly name: string }>>
}

/**
 * The hub service.
 *
 * @since 0.1.0
 */
export class RedisPubSub extends Context.Service<RedisPubSub, RedisPubSubService>()(
  "@diesel/clients/redis/RedisPubSub"
) {}

/**
 * Options of the hub.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * Messages buffered per subscriber stream (default 4096). A subscriber that falls further behind loses
   * its oldest messages rather than stalling the hub and every other subscriber.
   */
  readonly bufferSize?: number | undefined
}

const COMMANDS: Record<Kind, readonly [string, string]> = {
  channel: ["SUBSCRIBE", "UNSUBSCRIBE"],
  pattern: ["PSUBSCRIBE", "PUNSUBSCRIBE"],
  shard: ["SSUBSCRIBE", "SUNSUBSCRIBE"]
}

const CONFIRMATIONS: Record<string, Kind> = { subscribe: "channel", psubscribe: "pattern", ssubscribe: "shard" }

const text = (value: Resp.RespValue | undefined): string | undefined =>
  typeof value === "string" ? value : value instanceof Uint8Array ? Buffer.from(value).toString("utf8") : undefined

/**
 * Build a hub with its own subscriber connection (same server and credentials as `options`).
 *
 * @since 0.1.0
 */
export const make = Effect.fn("RedisPubSub.make")(function* (
  connection: Driver.DriverOptions,
  options: Options = {}
): Generator<Effect.Effect<unknown, RedisError, Scope.Scope>, RedisPubSubService, never> {
  const bufferSize = options.bufferSize ?? 4096
  const key = (kind: Kind, name: string) => `${kind}\u0000${name}`
  const subscribers = new Map<string, { kind: Kind; name: string; queues: Set<Queue.Queue<Message>> }>()
  const confirmations = new Map<string, Deferred.Deferred<void, RedisError>>()

  const deliver = (kind: Kind, name: string, message: Message) => {
    const entry = subscribers.get(key(kind, name))
    if (entry === undefined) return
    for (const queue of entry.queues) Queue.offerUnsafe(queue, message)
  }

  const onPush = (value: Resp.RespValue) => {
    if (value instanceof Resp.RespError) {
      // An error for a subscription request: fail the oldest one waiting.
      for (const [k, deferred] of confirmations) {
        confirmations.delete(k)
        Deferred.doneUnsafe(
          deferred,
          Effect.fail(new RedisReplyError({ command: "SUBSCRIBE", code: value.code, reply: value.message }))
        )
        break
      }
      return
    }
    const values =
      value instanceof Resp.RespPush
        ? value.values
        : Array.isArray(value)
          ? (value as ReadonlyArray<Resp.RespValue>)
          : []
    const type = text(values[0])
    switch (type) {
      case "message":
      case "smessage": {
        const channel = text(values[1])
        const payload = text(values[2])
        if (channel === undefined || payload === undefined) return
        deliver(type === "message" ? "channel" : "shard", channel, { channel, pattern: undefined, payload })
        return
      }
      case "pmessage": {
        const pattern = text(values[1])
        const channel = text(values[2])
        const payload = text(values[3])
        if (pattern === undefined || channel === undefined || payload === undefined) return
        deliver("pattern", pattern, { channel, pattern, payload })
        return
      }
      default: {
        const kind = type === undefined ? undefined : CONFIRMATIONS[type]
        const name = text(values[1])
        if (kind === undefined || name === undefined) return
        const k = key(kind, name)
        const deferred = confirmations.get(k)
        if (deferred !== undefined) {
          confirmations.delete(k)
          Deferred.doneUnsafe(deferred, Effect.void)
        }
      }
    }
  }

  /** Send (P|S)SUBSCRIBE for names and wait for the server's confirmations. */
  const serverSubscribe = (driver: Driver.Driver, kind: Kind, names: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      if (names.length === 0) return
      const waits: Array<Deferred.Deferred<void, RedisError>> = []
      for (const name of names) {
        const k = key(kind, name)
        let deferred = confirmations.get(k)
        if (deferred === undefined) {
          deferred = Deferred.makeUnsafe<void, RedisError>()
          confirmations.set(k, deferred)
        }
        waits.push(deferred)
      }
      yield* driver.sendNoReply([COMMANDS[kind][0], ...names])
      for (const deferred of waits) yield* Deferred.await(deferred)
    })

  const driver = yield* Driver.make(connection, (d) => {
    d.onPush = onPush
    // Restore every subscription on each new connection (the first one has none).
    d.onConnect = (self) =>
      Effect.forEach(
        ["channel", "pattern", "shard"] as const,
        (kind) =>
          serverSubscribe(
            self,
            kind,
            [...subscribers.values()].filter((e) => e.kind === kind).map((e) => e.name)
          ),
        { discard: true }
      )
  })

  const add = (kind: Kind, names: ReadonlyArray<string>, queue: Queue.Queue<Message>) =>
    Effect.suspend(() => {
      const fresh: Array<string> = []
      for (const name of names) {
        const k = key(kind, name)
        let entry = subscribers.get(k)
        if (entry === undefined) {
          entry = { kind, name, queues: new Set() }
          subscribers.set(k, entry)
          fresh.push(name)
        }
        entry.queues.add(queue)
      }
      // While disconnected the subscription is restored by the next connection's handshake.
      return driver.isReady ? Effect.ignore(serverSubscribe(driver, kind, fresh), { log: false }) : Effect.void
    })

  const remove = (kind: Kind, names: ReadonlyArray<string>, queue: Queue.Queue<Message>) =>
    Effect.suspend(() => {
      const gone: Array<string> = []
      for (const name of names) {
        const k = key(kind, name)
        const entry = subscribers.get(k)
        if (entry === undefined) continue
        entry.queues.delete(queue)
        if (entry.queues.size === 0) {
          subscribers.delete(k)
          gone.push(name)
        }
      }
      return gone.length === 0 || !driver.isReady
        ? Effect.void
        : Effect.ignore(driver.sendNoReply([COMMANDS[kind][1], ...gone]))
    })

  const stream = (kind: Kind, names: ReadonlyArray<string>): Stream.Stream<Message, RedisError> =>
    Stream.unwrap(
      Effect.gen(function* () {
        const queue = yield* Queue.sliding<Message>(bufferSize)
        yield* Effect.acquireRelease(add(kind, names, queue), () => remove(kind, names, queue))
        return Stream.fromQueue(queue)
      })
    )

  return {
    subscribe: (...channels) => stream("channel", channels),
    psubscribe: (...patterns) => stream("pattern", patterns),
    ssubscribe: (...channels) => stream("shard", channels),
    active: Effect.sync(() => [...subscribers.values()].map(({ kind, name }) => ({ kind, name })))
  }
})

/**
 * The hub as a Layer, on the same server and credentials as the `RedisClient` it is given.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<RedisPubSub, RedisError, RedisClient.RedisClient> =>
  Layer.effect(
    RedisPubSub,
    Effect.flatMap(RedisClient.RedisClient, (client) => make(client.driverOptions, options))
  )
