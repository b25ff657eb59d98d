/** Cryptographically random query IDs, ports and choices, drawn from a buffer refilled in batches. */
const buffer = new Uint16Array(4096)
let index = buffer.length

/** A random 16-bit value (a DNS message ID). */
export const randomUint16 = (): number => {
  if (index >= buffer.length) {
    globalThis.crypto.getRandomValues(buffer)
    index = 0
  }
  const value = buffer[index] ?? 0
  index++
  return value
}

/** A random integer in [0, n) for n <= 65536 (rejection sampling: no bias). */
export const randomBelow = (n: number): number => {
  if (n <= 1) return 0
  const limit = 65536 - (65536 % n)
  for (;;) {
    const value = randomUint16()
    if (value < limit) return value % n
  }
}

/** A random unprivileged port (1024-65535). */
export const randomPort = (): number => 1024 + randomBelow(65536 - 1024)
