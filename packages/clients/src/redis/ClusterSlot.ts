/**
 * Redis Cluster key slots: CRC16 (XMODEM) of the key, or of its hash tag (the part between the first `{`
 * and the next `}`, when not empty), modulo 16384. The same function the server runs (`CLUSTER KEYSLOT`).
 *
 * @example
 * ```ts
 * import { ClusterSlot } from "@diesel/clients/redis"
 *
 * ClusterSlot.keySlot("user:{42}:name") === ClusterSlot.keySlot("user:{42}:email") // true: same hash tag
 * ```
 *
 * @since 0.1.0
 */

/**
 * Number of slots in a Redis Cluster.
 *
 * @since 0.1.0
 * @category constants
 */
export const SLOTS = 16384

const TABLE = (() => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[i] = crc
  }
  return table
})()

/**
 * CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0) of `bytes[start, end)`.
 *
 * @example
 * ```ts
 * ClusterSlot.crc16(new TextEncoder().encode("123456789")) // 0x31c3
 * ```
 *
 * @since 0.1.0
 * @category hashing
 */
export const crc16 = (bytes: Uint8Array, start = 0, end = bytes.length): number => {
  let crc = 0
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >>> 8) ^ (bytes[i] ?? 0)) & 0xff] ?? 0)
  }
  return crc
}

const encoder = new TextEncoder()

/** ASCII keys (the common case) hashed straight from the string, without encoding it. */
const asciiSlot = (key: string): number | undefined => {
  let open = -1
  let close = -1
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (c > 0x7f) return undefined
    if (open === -1 && c === 0x7b) open = i
    else if (open !== -1 && close === -1 && c === 0x7d) close = i
  }
  let start = 0
  let end = key.length
  if (open !== -1 && close > open + 1) {
    start = open + 1
    end = close
  }
  let crc = 0
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >>> 8) ^ key.charCodeAt(i)) & 0xff] ?? 0)
  }
  return crc & (SLOTS - 1)
}

/**
 * The slot of a key (a string is hashed as its UTF-8 bytes, as the server sees it).
 *
 * @example
 * ```ts
 * ClusterSlot.keySlot("foo") // 12182
 * ClusterSlot.keySlot("{user1000}.following") === ClusterSlot.keySlot("{user1000}.followers") // true
 * ```
 *
 * @since 0.1.0
 * @category hashing
 */
export const keySlot = (key: string | Uint8Array): number => {
  if (typeof key === "string") {
    const slot = asciiSlot(key)
    if (slot !== undefined) return slot
  }
  const bytes = typeof key === "string" ? encoder.encode(key) : key
  const open = bytes.indexOf(0x7b)
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1)
    if (close > open + 1) return crc16(bytes, open + 1, close) & (SLOTS - 1)
  }
  return crc16(bytes) & (SLOTS - 1)
}
