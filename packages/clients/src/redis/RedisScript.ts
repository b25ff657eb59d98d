/**
 * Lua scripts identified by their SHA1, run with EVALSHA and, when the server does not know the script
 * yet (`NOSCRIPT`), with EVAL (which also loads it).
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"

/**
 * A script and its SHA1.
 *
 * @since 0.1.0
 */
export interface RedisScript {
  readonly source: string
  readonly sha: string
}

/**
 * @example
 * ```ts
 * const compareAndDelete = RedisScript.make(`
 *   if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`)
 * const removed = yield* redis.runScript(compareAndDelete, ["lock"], [token])
 * ```
 *
 * @since 0.1.0
 */
export const make = (source: string): RedisScript => ({
  source,
  sha: createHash("sha1").update(source).digest("hex")
})
