/**
 * A Redis command as data: its arguments and how to decode its reply. Every call of the client goes
 * through one `execute(command)`; the typed helpers of {@link Commands} only build commands.
 *
 * @since 0.1.0
 */
import { RedisUnexpectedReply } from "./RedisError.js"
import * as Resp from "./Resp.js"

/**
 * A command whose decoded reply is an `A`.
 *
 * @since 0.1.0
 */
export interface RedisCommand<out A> {
  /** Command name and arguments, as sent. */
  readonly args: ReadonlyArray<Resp.Arg>
  /** Bulk strings of the reply come back as `Uint8Array` instead of `string`. */
  readonly binary: boolean
  /** The command may block the connection (BLPOP, XREAD BLOCK, ...): it runs on a pooled connection. */
  readonly blocking: boolean
  /** Turn the reply into `A`; throws {@link RedisUnexpectedReply} on a reply of the wrong shape. */
  readonly decode: (reply: Resp.RespValue) => A
}

/**
 * The decoded reply type of a command.
 *
 * @since 0.1.0
 */
export type Success<C> = C extends RedisCommand<infer A> ? A : never

/**
 * Build a command.
 *
 * @example
 * ```ts
 * const ttl = RedisCommand.make(["TTL", "session"], RedisCommand.integer)
 * ```
 *
 * @since 0.1.0
 */
export const make = <A>(
  args: ReadonlyArray<Resp.Arg>,
  decode: (reply: Resp.RespValue, name: string) => A,
  options?: { readonly binary?: boolean | undefined; readonly blocking?: boolean | undefined }
): RedisCommand<A> => ({
  args,
  binary: options?.binary ?? false,
  blocking: options?.blocking ?? false,
  decode: (reply) => decode(reply, nameOf(args))
})

/**
 * Any command, reply left as a {@link Resp.RespValue}.
 *
 * @since 0.1.0
 */
export const raw = (
  args: ReadonlyArray<Resp.Arg>,
  options?: { readonly binary?: boolean }
): RedisCommand<Resp.RespValue> => make(args, identity, options)

const identity = (reply: Resp.RespValue): Resp.RespValue => reply

/**
 * The upper-case name of a command (its first argument).
 *
 * @since 0.1.0
 */
export const nameOf = (args: ReadonlyArray<Resp.Arg>): string => {
  const first = args[0]
  return typeof first === "string" ? first.toUpperCase() : String(first)
}

const unexpected = (command: string, expected: string, reply: Resp.RespValue): never => {
  throw new RedisUnexpectedReply({ command, expected, reply })
}

/** @since 0.1.0 */
export const ok = (reply: Resp.RespValue, name: string): void => {
  if (reply !== "OK") unexpected(name, "OK", reply)
}

/** An integer reply. @since 0.1.0 */
export const integer = (reply: Resp.RespValue, name: string): number =>
  typeof reply === "number" ? reply : unexpected(name, "an integer", reply)

/** An integer reply or nil. @since 0.1.0 */
export const integerOrNull = (reply: Resp.RespValue, name: string): number | null =>
  reply === null ? null : integer(reply, name)

/** An integer reply 0/1 (or a RESP3 boolean) as a boolean. @since 0.1.0 */
export const boolean = (reply: Resp.RespValue, name: string): boolean =>
  typeof reply === "boolean" ? reply : reply === 1 ? true : reply === 0 ? false : unexpected(name, "0 or 1", reply)

/** A text reply (bulk or status). @since 0.1.0 */
export const string = (reply: Resp.RespValue, name: string): string =>
  typeof reply === "string" ? reply : unexpected(name, "a string", reply)

/** A text reply or nil. @since 0.1.0 */
export const stringOrNull = (reply: Resp.RespValue, name: string): string | null =>
  reply === null ? null : string(reply, name)

/** A binary reply or nil (for commands issued with `binary: true`). @since 0.1.0 */
export const bytesOrNull = (reply: Resp.RespValue, name: string): Uint8Array | null =>
  reply === null ? null : reply instanceof Uint8Array ? reply : unexpected(name, "bytes", reply)

/** `OK` as true, nil as false (SET NX, ...). @since 0.1.0 */
export const okOrNull = (reply: Resp.RespValue, name: string): boolean =>
  reply === null ? false : reply === "OK" ? true : unexpected(name, "OK or nil", reply)

/** A floating point number (a RESP2 bulk string or a RESP3 double). @since 0.1.0 */
export const double = (reply: Resp.RespValue, name: string): number => {
  if (typeof reply === "number") return reply
  if (typeof reply === "string") {
    const n = reply === "inf" || reply === "+inf" ? Infinity : reply === "-inf" ? -Infinity : Number(reply)
    if (!Number.isNaN(n)) return n
  }
  return unexpected(name, "a number", reply)
}

/** A floating point number or nil. @since 0.1.0 */
export const doubleOrNull = (reply: Resp.RespValue, name: string): number | null =>
  reply === null ? null : double(reply, name)

const elements = (reply: Resp.RespValue, name: string): ReadonlyArray<Resp.RespValue> =>
  Array.isArray(reply)
    ? (reply as ReadonlyArray<Resp.RespValue>)
    : reply instanceof Resp.RespSet
      ? reply.values
      : unexpected(name, "an array", reply)

/** An array (or RESP3 set) of strings. @since 0.1.0 */
export const strings = (reply: Resp.RespValue, name: string): ReadonlyArray<string> =>
  elements(reply, name).map((e) => string(e, name))

/** An array of strings or nils (MGET, HMGET). @since 0.1.0 */
export const stringsOrNull = (reply: Resp.RespValue, name: string): ReadonlyArray<string | null> =>
  elements(reply, name).map((e) => stringOrNull(e, name))

/** An array of integers. @since 0.1.0 */
export const integers = (reply: Resp.RespValue, name: string): ReadonlyArray<number> =>
  elements(reply, name).map((e) => integer(e, name))

/** An array, or nil. @since 0.1.0 */
export const arrayOrNull = (reply: Resp.RespValue, name: string): ReadonlyArray<Resp.RespValue> | null =>
  reply === null ? null : elements(reply, name)

/** A RESP3 map or RESP2 flat array of field/value pairs, as a record of strings. @since 0.1.0 */
export const record = (reply: Resp.RespValue, name: string): Record<string, string> => {
  const r = Resp.toRecord(reply)
  if (r === undefined) return unexpected(name, "a map", reply)
  const out: Record<string, string> = {}
  for (const key of Object.keys(r)) out[key] = string(r[key] ?? null, name)
  return out
}

/** A member/score list: RESP2 flat `[m, s, m, s]` or RESP3 `[[m, s], ...]`. @since 0.1.0 */
export const withScores = (
  reply: Resp.RespValue,
  name: string
): ReadonlyArray<{ readonly member: string; readonly score: number }> => {
  const list = elements(reply, name)
  const out: Array<{ readonly member: string; readonly score: number }> = []
  if (list.length > 0 && Array.isArray(list[0])) {
    for (const pair of list) {
      const p = elements(pair, name)
      out.push({ member: string(p[0] ?? null, name), score: double(p[1] ?? null, name) })
    }
    return out
  }
  if (list.length % 2 !== 0) return unexpected(name, "member/score pairs", reply)
  for (let i = 0; i < list.length; i += 2) {
    out.push({ member: string(list[i] ?? null, name), score: double(list[i + 1] ?? null, name) })
  }
  return out
}

/**
 * A stream entry: its id and fields.
 *
 * @since 0.1.0
 */
export interface StreamEntry {
  readonly id: string
  readonly fields: Record<string, string>
}

/** A list of stream entries (XRANGE). @since 0.1.0 */
export const streamEntries = (reply: Resp.RespValue, name: string): ReadonlyArray<StreamEntry> =>
  elements(reply, name).map((entry) => {
    const pair = elements(entry, name)
    return { id: string(pair[0] ?? null, name), fields: record(pair[1] ?? null, name) }
  })

/** XREAD/XREADGROUP: entries per stream key, or an empty list on timeout. @since 0.1.0 */
export const streamRead = (
  reply: Resp.RespValue,
  name: string
): ReadonlyArray<{ readonly stream: string; readonly entries: ReadonlyArray<StreamEntry> }> => {
  if (reply === null) return []
  if (reply instanceof Resp.RespMap) {
    return reply.entries.map(([k, v]) => ({ stream: string(k, name), entries: streamEntries(v, name) }))
  }
  return elements(reply, name).map((item) => {
    const pair = elements(item, name)
    return { stream: string(pair[0] ?? null, name), entries: streamEntries(pair[1] ?? null, name) }
  })
}

/** A `[key, value]` pair or nil (BLPOP, BRPOP). @since 0.1.0 */
export const keyValueOrNull = (
  reply: Resp.RespValue,
  name: string
): { readonly key: string; readonly value: string } | null => {
  if (reply === null) return null
  const pair = elements(reply, name)
  return { key: string(pair[0] ?? null, name), value: string(pair[1] ?? null, name) }
}
