/**
 * The resolver's cache: entries expire after their TTL, and the least recently used go first when
 * `maxEntries` is reached. Time is passed in (milliseconds from `Clock`), so `TestClock` drives expiry.
 *
 * @example
 * ```ts
 * import { ResolverCache } from "@diesel/clients/dns"
 *
 * const cache = ResolverCache.make<string>({ maxEntries: 2 })
 * cache.set("a", "value", 60, 0)
 * cache.get("a", 30_000) // { value: "value", age: 30 }
 * cache.get("a", 60_000) // undefined: expired
 * ```
 *
 * @since 0.1.0
 */

interface Entry<V> {
  readonly value: V
  readonly storedAt: number
  readonly expiresAt: number
}

/**
 * A bounded TTL cache.
 *
 * @since 0.1.0
 */
export interface ResolverCache<V> {
  /** The value and its age in whole seconds, unless absent or expired (then it is removed). */
  readonly get: (key: string, now: number) => { readonly value: V; readonly age: number } | undefined
  /** Stores `value` for `ttl` seconds; a TTL of 0 or less stores nothing. */
  readonly set: (key: string, value: V, ttl: number, now: number) => void
  readonly delete: (key: string) => void
  readonly clear: () => void
  readonly size: () => number
}

/**
 * A cache holding at most `maxEntries` entries.
 *
 * @since 0.1.0
 */
export const make = <V>(options: { readonly maxEntries: number }): ResolverCache<V> => {
  const entries = new Map<string, Entry<V>>()
  const max = Math.max(1, options.maxEntries)
  return {
    get: (key, now) => {
      const entry = entries.get(key)
      if (entry === undefined) return undefined
      if (now >= entry.expiresAt) {
        entries.delete(key)
        return undefined
      }
      // Most recently used last.
      entries.delete(key)
      entries.set(key, entry)
      return { value: entry.value, age: Math.floor((now - entry.storedAt) / 1000) }
    },
    set: (key, value, ttl, now) => {
      if (!(ttl > 0)) return
      entries.delete(key)
      entries.set(key, { value, storedAt: now, expiresAt: now + ttl * 1000 })
      while (entries.size > max) {
        const oldest = entries.keys().next()
        if (oldest.done === true) break
        entries.delete(oldest.value)
      }
    },
    delete: (key) => {
      entries.delete(key)
    },
    clear: () => entries.clear(),
    size: () => entries.size
  }
}
