/**
 * Typed builders for the common Redis commands. Each returns a {@link RedisCommand.RedisCommand}; the
 * client exposes every builder as a method of the same name that runs it
 * (`redis.get("k")` is `redis.execute(Commands.get("k"))`), and pipelines and transactions take them
 * as data.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as C from "./RedisCommand.js"
import type { Arg } from "./Resp.js"

type Cmd<A> = C.RedisCommand<A>

const ms = (d: Duration.Input): number => Math.max(0, Math.round(Duration.toMillis(Duration.fromInputUnsafe(d))))

// ---------------------------------------------------------------------------------------------------------
// Server and connection

/** PING, answered with PONG (or the message). @since 0.1.0 */
export const ping = (message?: string): Cmd<string> =>
  C.make(message === undefined ? ["PING"] : ["PING", message], C.string)
/** ECHO. @since 0.1.0 */
export const echo = (message: string): Cmd<string> => C.make(["ECHO", message], C.string)
/** INFO [section]: the raw text. @since 0.1.0 */
export const info = (section?: string): Cmd<string> =>
  C.make(section === undefined ? ["INFO"] : ["INFO", section], C.string)
/** DBSIZE. @since 0.1.0 */
export const dbsize = (): Cmd<number> => C.make(["DBSIZE"], C.integer)
/** FLUSHDB. @since 0.1.0 */
export const flushdb = (): Cmd<void> => C.make(["FLUSHDB"], C.ok)
/** FLUSHALL. @since 0.1.0 */
export const flushall = (): Cmd<void> => C.make(["FLUSHALL"], C.ok)
/** TIME: server time in microseconds since the epoch. @since 0.1.0 */
export const time = (): Cmd<number> =>
  C.make(["TIME"], (r, n) => {
    const [s, us] = C.strings(r, n)
    return Number(s) * 1_000_000 + Number(us)
  })
/** CONFIG GET pattern. @since 0.1.0 */
export const configGet = (pattern: string): Cmd<Record<string, string>> => C.make(["CONFIG", "GET", pattern], C.record)
/** CONFIG SET parameter value. @since 0.1.0 */
export const configSet = (parameter: string, value: string): Cmd<void> =>
  C.make(["CONFIG", "SET", parameter, value], C.ok)
/** CLIENT ID of this connection. @since 0.1.0 */
export const clientId = (): Cmd<number> => C.make(["CLIENT", "ID"], C.integer)
/** CLIENT KILL ID id: close another connection. @since 0.1.0 */
export const clientKill = (id: number): Cmd<number> => C.make(["CLIENT", "KILL", "ID", id], C.integer)

// ---------------------------------------------------------------------------------------------------------
// Keys

/** EXISTS key...: how many exist. @since 0.1.0 */
export const exists = (...keys: ReadonlyArray<string>): Cmd<number> => C.make(["EXISTS", ...keys], C.integer)
/** DEL key...: how many were removed. @since 0.1.0 */
export const del = (...keys: ReadonlyArray<string>): Cmd<number> => C.make(["DEL", ...keys], C.integer)
/** UNLINK key... @since 0.1.0 */
export const unlink = (...keys: ReadonlyArray<string>): Cmd<number> => C.make(["UNLINK", ...keys], C.integer)
/** TYPE key. @since 0.1.0 */
export const type = (key: string): Cmd<string> => C.make(["TYPE", key], C.string)
/** KEYS pattern (prefer SCAN on large databases). @since 0.1.0 */
export const keys = (pattern: string): Cmd<ReadonlyArray<string>> => C.make(["KEYS", pattern], C.strings)
/** SCAN cursor [MATCH pattern] [COUNT n]. @since 0.1.0 */
export const scan = (
  cursor: string,
  options?: { readonly match?: string; readonly count?: number }
): Cmd<{ readonly cursor: string; readonly keys: ReadonlyArray<string> }> => {
  const args: Array<Arg> = ["SCAN", cursor]
  if (options?.match !== undefined) args.push("MATCH", options.match)
  if (options?.count !== undefined) args.push("COUNT", options.count)
  return C.make(args, (r, n) => {
    const [next, list] = C.arrayOrNull(r, n) ?? []
    return { cursor: C.string(next ?? null, n), keys: C.strings(list ?? null, n) }
  })
}
/** RANDOMKEY. @since 0.1.0 */
export const randomkey = (): Cmd<string | null> => C.make(["RANDOMKEY"], C.stringOrNull)
/** RENAME. @since 0.1.0 */
export const rename = (key: string, newKey: string): Cmd<void> => C.make(["RENAME", key, newKey], C.ok)
/** RENAMENX: false if newKey exists. @since 0.1.0 */
export const renamenx = (key: string, newKey: string): Cmd<boolean> => C.make(["RENAMENX", key, newKey], C.boolean)
/** EXPIRE key seconds: false if the key does not exist. @since 0.1.0 */
export const expire = (key: string, ttl: Duration.Input): Cmd<boolean> => C.make(["PEXPIRE", key, ms(ttl)], C.boolean)
/** EXPIREAT key date. @since 0.1.0 */
export const expireAt = (key: string, at: Date): Cmd<boolean> => C.make(["PEXPIREAT", key, at.getTime()], C.boolean)
/** PERSIST key. @since 0.1.0 */
export const persist = (key: string): Cmd<boolean> => C.make(["PERSIST", key], C.boolean)
/**
 * PTTL key: remaining time to live, `null` when the key has no expiry, `undefined` when it does not exist.
 *
 * @since 0.1.0
 */
export const ttl = (key: string): Cmd<Duration.Duration | null | undefined> =>
  C.make(["PTTL", key], (r, n) => {
    const v = C.integer(r, n)
    return v === -2 ? undefined : v === -1 ? null : Duration.millis(v)
  })
/** SELECT db (on the shared connection; prefer the `database` option). @since 0.1.0 */
export const select = (db: number): Cmd<void> => C.make(["SELECT", db], C.ok)
/** MOVE key db. @since 0.1.0 */
export const move = (key: string, db: number): Cmd<boolean> => C.make(["MOVE", key, db], C.boolean)

// ---------------------------------------------------------------------------------------------------------
// Strings

/** Options of SET. @since 0.1.0 */
export interface SetOptions {
  /** Expire after this long (PX). */
  readonly expire?: Duration.Input | undefined
  /** Only if the key does not exist (NX) / already exists (XX). */
  readonly condition?: "NX" | "XX" | undefined
  /** Keep the current time to live (KEEPTTL). */
  readonly keepTtl?: boolean | undefined
}

const setArgs = (key: string, value: Arg, options?: SetOptions): Array<Arg> => {
  const args: Array<Arg> = ["SET", key, value]
  if (options?.expire !== undefined) args.push("PX", Math.max(1, ms(options.expire)))
  if (options?.condition !== undefined) args.push(options.condition)
  if (options?.keepTtl === true) args.push("KEEPTTL")
  return args
}

/** GET key. @since 0.1.0 */
export const get = (key: string): Cmd<string | null> => C.make(["GET", key], C.stringOrNull)
/** GET key, binary: the value's exact bytes. @since 0.1.0 */
export const getBuffer = (key: string): Cmd<Uint8Array | null> => C.make(["GET", key], C.bytesOrNull, { binary: true })
/**
 * SET key value [PX ms] [NX|XX] [KEEPTTL]: true when set, false when a condition prevented it.
 *
 * @since 0.1.0
 */
export const set = (key: string, value: Arg, options?: SetOptions): Cmd<boolean> =>
  C.make(setArgs(key, value, options), C.okOrNull)
/** SETNX semantics through SET NX. @since 0.1.0 */
export const setnx = (key: string, value: Arg): Cmd<boolean> => C.make(["SET", key, value, "NX"], C.okOrNull)
/** SET with an expiry (SETEX). @since 0.1.0 */
export const setex = (key: string, ttl: Duration.Input, value: Arg): Cmd<void> =>
  C.make(["SET", key, value, "PX", Math.max(1, ms(ttl))], C.ok)
/** SET ... GET: the previous value. @since 0.1.0 */
export const getset = (key: string, value: Arg): Cmd<string | null> =>
  C.make(["SET", key, value, "GET"], C.stringOrNull)
/** GETDEL. @since 0.1.0 */
export const getdel = (key: string): Cmd<string | null> => C.make(["GETDEL", key], C.stringOrNull)
/** MGET key... @since 0.1.0 */
export const mget = (...keys: ReadonlyArray<string>): Cmd<ReadonlyArray<string | null>> =>
  C.make(["MGET", ...keys], C.stringsOrNull)
/** MSET from a record. @since 0.1.0 */
export const mset = (values: Readonly<Record<string, Arg>>): Cmd<void> =>
  C.make(["MSET", ...Object.entries(values).flat()], C.ok)
/** MSETNX from a record: false if any key existed. @since 0.1.0 */
export const msetnx = (values: Readonly<Record<string, Arg>>): Cmd<boolean> =>
  C.make(["MSETNX", ...Object.entries(values).flat()], C.boolean)
/** INCR. @since 0.1.0 */
export const incr = (key: string): Cmd<number> => C.make(["INCR", key], C.integer)
/** INCRBY. @since 0.1.0 */
export const incrby = (key: string, by: number): Cmd<number> => C.make(["INCRBY", key, by], C.integer)
/** INCRBYFLOAT. @since 0.1.0 */
export const incrbyfloat = (key: string, by: number): Cmd<number> => C.make(["INCRBYFLOAT", key, by], C.double)
/** DECR. @since 0.1.0 */
export const decr = (key: string): Cmd<number> => C.make(["DECR", key], C.integer)
/** DECRBY. @since 0.1.0 */
export const decrby = (key: string, by: number): Cmd<number> => C.make(["DECRBY", key, by], C.integer)
/** APPEND: the new length. @since 0.1.0 */
export const append = (key: string, value: Arg): Cmd<number> => C.make(["APPEND", key, value], C.integer)
/** GETRANGE (SUBSTR). @since 0.1.0 */
export const getrange = (key: string, start: number, end: number): Cmd<string> =>
  C.make(["GETRANGE", key, start, end], C.string)
/** STRLEN. @since 0.1.0 */
export const strlen = (key: string): Cmd<number> => C.make(["STRLEN", key], C.integer)
/** GETBIT. @since 0.1.0 */
export const getbit = (key: string, offset: number): Cmd<number> => C.make(["GETBIT", key, offset], C.integer)
/** SETBIT: the previous bit. @since 0.1.0 */
export const setbit = (key: string, offset: number, bit: 0 | 1): Cmd<number> =>
  C.make(["SETBIT", key, offset, bit], C.integer)

// ---------------------------------------------------------------------------------------------------------
// Lists

/** RPUSH: the new length. @since 0.1.0 */
export const rpush = (key: string, ...values: ReadonlyArray<Arg>): Cmd<number> =>
  C.make(["RPUSH", key, ...values], C.integer)
/** LPUSH: the new length. @since 0.1.0 */
export const lpush = (key: string, ...values: ReadonlyArray<Arg>): Cmd<number> =>
  C.make(["LPUSH", key, ...values], C.integer)
/** LLEN. @since 0.1.0 */
export const llen = (key: string): Cmd<number> => C.make(["LLEN", key], C.integer)
/** LRANGE. @since 0.1.0 */
export const lrange = (key: string, start: number, stop: number): Cmd<ReadonlyArray<string>> =>
  C.make(["LRANGE", key, start, stop], C.strings)
/** LTRIM. @since 0.1.0 */
export const ltrim = (key: string, start: number, stop: number): Cmd<void> => C.make(["LTRIM", key, start, stop], C.ok)
/** LINDEX. @since 0.1.0 */
export const lindex = (key: string, index: number): Cmd<string | null> => C.make(["LINDEX", key, index], C.stringOrNull)
/** LSET. @since 0.1.0 */
export const lset = (key: string, index: number, value: Arg): Cmd<void> => C.make(["LSET", key, index, value], C.ok)
/** LREM key count value. @since 0.1.0 */
export const lrem = (key: string, value: Arg, count = 0): Cmd<number> => C.make(["LREM", key, count, value], C.integer)
/** LPOP. @since 0.1.0 */
export const lpop = (key: string): Cmd<string | null> => C.make(["LPOP", key], C.stringOrNull)
/** RPOP. @since 0.1.0 */
export const rpop = (key: string): Cmd<string | null> => C.make(["RPOP", key], C.stringOrNull)
/** LMOVE source destination LEFT|RIGHT LEFT|RIGHT. @since 0.1.0 */
export const lmove = (
  source: string,
  destination: string,
  from: "LEFT" | "RIGHT",
  to: "LEFT" | "RIGHT"
): Cmd<string | null> => C.make(["LMOVE", source, destination, from, to], C.stringOrNull)
/** RPOPLPUSH. @since 0.1.0 */
export const rpoplpush = (source: string, destination: string): Cmd<string | null> =>
  C.make(["RPOPLPUSH", source, destination], C.stringOrNull)
/**
 * BLPOP keys timeout (blocking; runs on a pooled connection). `null` on timeout; a timeout of 0 waits
 * forever.
 *
 * @since 0.1.0
 */
export const blpop = (
  keys: ReadonlyArray<string>,
  timeout: Duration.Input
): Cmd<{ readonly key: string; readonly value: string } | null> =>
  C.make(["BLPOP", ...keys, ms(timeout) / 1000], C.keyValueOrNull, { blocking: true })
/** BRPOP keys timeout (blocking). @since 0.1.0 */
export const brpop = (
  keys: ReadonlyArray<string>,
  timeout: Duration.Input
): Cmd<{ readonly key: string; readonly value: string } | null> =>
  C.make(["BRPOP", ...keys, ms(timeout) / 1000], C.keyValueOrNull, { blocking: true })
/** BLMOVE (blocking). @since 0.1.0 */
export const blmove = (
  source: string,
  destination: string,
  from: "LEFT" | "RIGHT",
  to: "LEFT" | "RIGHT",
  timeout: Duration.Input
): Cmd<string | null> =>
  C.make(["BLMOVE", source, destination, from, to, ms(timeout) / 1000], C.stringOrNull, { blocking: true })

// ---------------------------------------------------------------------------------------------------------
// Sets

/** SADD: how many were added. @since 0.1.0 */
export const sadd = (key: string, ...members: ReadonlyArray<Arg>): Cmd<number> =>
  C.make(["SADD", key, ...members], C.integer)
/** SREM. @since 0.1.0 */
export const srem = (key: string, ...members: ReadonlyArray<Arg>): Cmd<number> =>
  C.make(["SREM", key, ...members], C.integer)
/** SPOP. @since 0.1.0 */
export const spop = (key: string): Cmd<string | null> => C.make(["SPOP", key], C.stringOrNull)
/** SMOVE. @since 0.1.0 */
export const smove = (source: string, destination: string, member: Arg): Cmd<boolean> =>
  C.make(["SMOVE", source, destination, member], C.boolean)
/** SCARD. @since 0.1.0 */
export const scard = (key: string): Cmd<number> => C.make(["SCARD", key], C.integer)
/** SISMEMBER. @since 0.1.0 */
export const sismember = (key: string, member: Arg): Cmd<boolean> => C.make(["SISMEMBER", key, member], C.boolean)
/** SMEMBERS (order unspecified). @since 0.1.0 */
export const smembers = (key: string): Cmd<ReadonlyArray<string>> => C.make(["SMEMBERS", key], C.strings)
/** SRANDMEMBER. @since 0.1.0 */
export const srandmember = (key: string): Cmd<string | null> => C.make(["SRANDMEMBER", key], C.stringOrNull)
/** SINTER. @since 0.1.0 */
export const sinter = (...keys: ReadonlyArray<string>): Cmd<ReadonlyArray<string>> =>
  C.make(["SINTER", ...keys], C.strings)
/** SUNION. @since 0.1.0 */
export const sunion = (...keys: ReadonlyArray<string>): Cmd<ReadonlyArray<string>> =>
  C.make(["SUNION", ...keys], C.strings)
/** SDIFF. @since 0.1.0 */
export const sdiff = (...keys: ReadonlyArray<string>): Cmd<ReadonlyArray<string>> =>
  C.make(["SDIFF", ...keys], C.strings)
/** SINTERSTORE. @since 0.1.0 */
export const sinterstore = (destination: string, ...keys: ReadonlyArray<string>): Cmd<number> =>
  C.make(["SINTERSTORE", destination, ...keys], C.integer)
/** SUNIONSTORE. @since 0.1.0 */
export const sunionstore = (destination: string, ...keys: ReadonlyArray<string>): Cmd<number> =>
  C.make(["SUNIONSTORE", destination, ...keys], C.integer)
/** SDIFFSTORE. @since 0.1.0 */
export const sdiffstore = (destination: string, ...keys: ReadonlyArray<string>): Cmd<number> =>
  C.make(["SDIFFSTORE", destination, ...keys], C.integer)

// ---------------------------------------------------------------------------------------------------------
// Sorted sets

/** ZADD key score member [score member ...]: how many were added. @since 0.1.0 */
export const zadd = (
  key: string,
  ...entries: ReadonlyArray<{ readonly score: number; readonly member: Arg }>
): Cmd<number> => C.make(["ZADD", key, ...entries.flatMap((e) => [e.score, e.member])], C.integer)
/** ZREM. @since 0.1.0 */
export const zrem = (key: string, ...members: ReadonlyArray<Arg>): Cmd<number> =>
  C.make(["ZREM", key, ...members], C.integer)
/** ZCARD. @since 0.1.0 */
export const zcard = (key: string): Cmd<number> => C.make(["ZCARD", key], C.integer)
/** ZSCORE. @since 0.1.0 */
export const zscore = (key: string, member: Arg): Cmd<number | null> => C.make(["ZSCORE", key, member], C.doubleOrNull)
/** ZINCRBY: the new score. @since 0.1.0 */
export const zincrby = (key: string, by: number, member: Arg): Cmd<number> =>
  C.make(["ZINCRBY", key, by, member], C.double)
/** ZRANK. @since 0.1.0 */
export const zrank = (key: string, member: Arg): Cmd<number | null> => C.make(["ZRANK", key, member], C.integerOrNull)
/** ZREVRANK. @since 0.1.0 */
export const zrevrank = (key: string, member: Arg): Cmd<number | null> =>
  C.make(["ZREVRANK", key, member], C.integerOrNull)
/** ZRANGE key start stop (by rank). @since 0.1.0 */
export const zrange = (key: string, start: number, stop: number): Cmd<ReadonlyArray<string>> =>
  C.make(["ZRANGE", key, start, stop], C.strings)
/** ZREVRANGE. @since 0.1.0 */
export const zrevrange = (key: string, start: number, stop: number): Cmd<ReadonlyArray<string>> =>
  C.make(["ZRANGE", key, start, stop, "REV"], C.strings)
/** ZRANGE ... WITHSCORES. @since 0.1.0 */
export const zrangeWithScores = (
  key: string,
  start: number,
  stop: number
): Cmd<ReadonlyArray<{ readonly member: string; readonly score: number }>> =>
  C.make(["ZRANGE", key, start, stop, "WITHSCORES"], C.withScores)
/** ZRANGEBYSCORE key min max [LIMIT offset count]; bounds as Redis writes them ("-inf", "(5"). @since 0.1.0 */
export const zrangebyscore = (
  key: string,
  min: number | string,
  max: number | string,
  limit?: { readonly offset: number; readonly count: number }
): Cmd<ReadonlyArray<string>> =>
  C.make(
    limit === undefined
      ? ["ZRANGEBYSCORE", key, min, max]
      : ["ZRANGEBYSCORE", key, min, max, "LIMIT", limit.offset, limit.count],
    C.strings
  )
/** ZCOUNT. @since 0.1.0 */
export const zcount = (key: string, min: number | string, max: number | string): Cmd<number> =>
  C.make(["ZCOUNT", key, min, max], C.integer)
/** ZREMRANGEBYRANK. @since 0.1.0 */
export const zremrangebyrank = (key: string, start: number, stop: number): Cmd<number> =>
  C.make(["ZREMRANGEBYRANK", key, start, stop], C.integer)
/** ZREMRANGEBYSCORE. @since 0.1.0 */
export const zremrangebyscore = (key: string, min: number | string, max: number | string): Cmd<number> =>
  C.make(["ZREMRANGEBYSCORE", key, min, max], C.integer)
/** BZPOPMIN keys timeout (blocking). @since 0.1.0 */
export const bzpopmin = (
  keys: ReadonlyArray<string>,
  timeout: Duration.Input
): Cmd<{ readonly key: string; readonly member: string; readonly score: number } | null> =>
  C.make(
    ["BZPOPMIN", ...keys, ms(timeout) / 1000],
    (r, n) => {
      const list = C.arrayOrNull(r, n)
      if (list === null) return null
      return {
        key: C.string(list[0] ?? null, n),
        member: C.string(list[1] ?? null, n),
        score: C.double(list[2] ?? null, n)
      }
    },
    { blocking: true }
  )

// ---------------------------------------------------------------------------------------------------------
// Hashes

/** HSET key field value [field value ...] from a record: how many fields were added. @since 0.1.0 */
export const hset = (key: string, fields: Readonly<Record<string, Arg>>): Cmd<number> =>
  C.make(["HSET", key, ...Object.entries(fields).flat()], C.integer)
/** HSETNX. @since 0.1.0 */
export const hsetnx = (key: string, field: string, value: Arg): Cmd<boolean> =>
  C.make(["HSETNX", key, field, value], C.boolean)
/** HGET. @since 0.1.0 */
export const hget = (key: string, field: string): Cmd<string | null> => C.make(["HGET", key, field], C.stringOrNull)
/** HMGET: a record of the fields asked for (missing ones are null). @since 0.1.0 */
export const hmget = (key: string, ...fields: ReadonlyArray<string>): Cmd<Record<string, string | null>> =>
  C.make(["HMGET", key, ...fields], (r, n) => {
    const values = C.stringsOrNull(r, n)
    const out: Record<string, string | null> = {}
    fields.forEach((f, i) => {
      out[f] = values[i] ?? null
    })
    return out
  })
/** HGETALL. @since 0.1.0 */
export const hgetall = (key: string): Cmd<Record<string, string>> => C.make(["HGETALL", key], C.record)
/** HINCRBY. @since 0.1.0 */
export const hincrby = (key: string, field: string, by: number): Cmd<number> =>
  C.make(["HINCRBY", key, field, by], C.integer)
/** HINCRBYFLOAT. @since 0.1.0 */
export const hincrbyfloat = (key: string, field: string, by: number): Cmd<number> =>
  C.make(["HINCRBYFLOAT", key, field, by], C.double)
/** HEXISTS. @since 0.1.0 */
export const hexists = (key: string, field: string): Cmd<boolean> => C.make(["HEXISTS", key, field], C.boolean)
/** HDEL. @since 0.1.0 */
export const hdel = (key: string, ...fields: ReadonlyArray<string>): Cmd<number> =>
  C.make(["HDEL", key, ...fields], C.integer)
/** HLEN. @since 0.1.0 */
export const hlen = (key: string): Cmd<number> => C.make(["HLEN", key], C.integer)
/** HKEYS. @since 0.1.0 */
export const hkeys = (key: string): Cmd<ReadonlyArray<string>> => C.make(["HKEYS", key], C.strings)
/** HVALS. @since 0.1.0 */
export const hvals = (key: string): Cmd<ReadonlyArray<string>> => C.make(["HVALS", key], C.strings)

// ---------------------------------------------------------------------------------------------------------
// Streams

/** XADD key [MAXLEN ~ n] id|* field value...: the entry id. @since 0.1.0 */
export const xadd = (
  key: string,
  fields: Readonly<Record<string, Arg>>,
  options?: { readonly id?: string; readonly maxLength?: number }
): Cmd<string> => {
  const args: Array<Arg> = ["XADD", key]
  if (options?.maxLength !== undefined) args.push("MAXLEN", "~", options.maxLength)
  args.push(options?.id ?? "*", ...Object.entries(fields).flat())
  return C.make(args, C.string)
}
/** XLEN. @since 0.1.0 */
export const xlen = (key: string): Cmd<number> => C.make(["XLEN", key], C.integer)
/** XRANGE key start end [COUNT n]. @since 0.1.0 */
export const xrange = (key: string, start = "-", end = "+", count?: number): Cmd<ReadonlyArray<C.StreamEntry>> =>
  C.make(
    count === undefined ? ["XRANGE", key, start, end] : ["XRANGE", key, start, end, "COUNT", count],
    C.streamEntries
  )
/** XREVRANGE key end start [COUNT n]. @since 0.1.0 */
export const xrevrange = (key: string, end = "+", start = "-", count?: number): Cmd<ReadonlyArray<C.StreamEntry>> =>
  C.make(
    count === undefined ? ["XREVRANGE", key, end, start] : ["XREVRANGE", key, end, start, "COUNT", count],
    C.streamEntries
  )
/** XDEL. @since 0.1.0 */
export const xdel = (key: string, ...ids: ReadonlyArray<string>): Cmd<number> =>
  C.make(["XDEL", key, ...ids], C.integer)
/** XTRIM key MAXLEN n. @since 0.1.0 */
export const xtrim = (key: string, maxLength: number): Cmd<number> =>
  C.make(["XTRIM", key, "MAXLEN", maxLength], C.integer)

/** Options of XREAD / XREADGROUP. @since 0.1.0 */
export interface XReadOptions {
  readonly count?: number | undefined
  /** Wait this long for entries (BLOCK; 0 waits forever). The command then runs on a pooled connection. */
  readonly block?: Duration.Input | undefined
}

/** XREAD [COUNT n] [BLOCK ms] STREAMS key... id...: an empty list on timeout. @since 0.1.0 */
export const xread = (
  streams: Readonly<Record<string, string>>,
  options?: XReadOptions
): Cmd<ReadonlyArray<{ readonly stream: string; readonly entries: ReadonlyArray<C.StreamEntry> }>> => {
  const args: Array<Arg> = ["XREAD"]
  if (options?.count !== undefined) args.push("COUNT", options.count)
  if (options?.block !== undefined) args.push("BLOCK", ms(options.block))
  args.push("STREAMS", ...Object.keys(streams), ...Object.values(streams))
  return C.make(args, C.streamRead, { blocking: options?.block !== undefined })
}
/** XGROUP CREATE key group id [MKSTREAM]. @since 0.1.0 */
export const xgroupCreate = (key: string, group: string, id = "$", mkstream = true): Cmd<void> =>
  C.make(mkstream ? ["XGROUP", "CREATE", key, group, id, "MKSTREAM"] : ["XGROUP", "CREATE", key, group, id], C.ok)
/** XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] STREAMS key... id... @since 0.1.0 */
export const xreadgroup = (
  group: string,
  consumer: string,
  streams: Readonly<Record<string, string>>,
  options?: XReadOptions
): Cmd<ReadonlyArray<{ readonly stream: string; readonly entries: ReadonlyArray<C.StreamEntry> }>> => {
  const args: Array<Arg> = ["XREADGROUP", "GROUP", group, consumer]
  if (options?.count !== undefined) args.push("COUNT", options.count)
  if (options?.block !== undefined) args.push("BLOCK", ms(options.block))
  args.push("STREAMS", ...Object.keys(streams), ...Object.values(streams))
  return C.make(args, C.streamRead, { blocking: options?.block !== undefined })
}
/** XACK key group id... @since 0.1.0 */
export const xack = (key: string, group: string, ...ids: ReadonlyArray<string>): Cmd<number> =>
  C.make(["XACK", key, group, ...ids], C.integer)

// ---------------------------------------------------------------------------------------------------------
// Pub/sub (publishing; subscribing is RedisPubSub's)

/** PUBLISH channel message: how many subscribers received it. @since 0.1.0 */
export const publish = (channel: string, message: Arg): Cmd<number> => C.make(["PUBLISH", channel, message], C.integer)
/** SPUBLISH shardchannel message (Redis 7). @since 0.1.0 */
export const spublish = (channel: string, message: Arg): Cmd<number> =>
  C.make(["SPUBLISH", channel, message], C.integer)

// ---------------------------------------------------------------------------------------------------------
// Scripts (see RedisScript for EVALSHA with a NOSCRIPT fallback)

/** EVAL script numkeys key... arg...: the raw reply. @since 0.1.0 */
export const evalScript = (script: string, keys: ReadonlyArray<string> = [], args: ReadonlyArray<Arg> = []) =>
  C.raw(["EVAL", script, keys.length, ...keys, ...args])
/** EVALSHA sha numkeys key... arg...: the raw reply. @since 0.1.0 */
export const evalsha = (sha: string, keys: ReadonlyArray<string> = [], args: ReadonlyArray<Arg> = []) =>
  C.raw(["EVALSHA", sha, keys.length, ...keys, ...args])
/** SCRIPT LOAD: the sha1. @since 0.1.0 */
export const scriptLoad = (script: string): Cmd<string> => C.make(["SCRIPT", "LOAD", script], C.string)
/** SCRIPT EXISTS sha...: one boolean per sha. @since 0.1.0 */
export const scriptExists = (...shas: ReadonlyArray<string>): Cmd<ReadonlyArray<boolean>> =>
  C.make(["SCRIPT", "EXISTS", ...shas], (r, n) => C.integers(r, n).map((v) => v === 1))
/** SCRIPT FLUSH. @since 0.1.0 */
export const scriptFlush = (): Cmd<void> => C.make(["SCRIPT", "FLUSH"], C.ok)
