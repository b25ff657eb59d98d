/**
 * A small seeded PRNG (xoshiro128**, seeded through splitmix32). The simulation draws every random
 * choice from one of these so that a seed reproduces a run exactly; `Math.random` is never used.
 *
 * @internal
 */

const splitmix32 = (state: { value: number }): number => {
  state.value = (state.value + 0x9e3779b9) | 0
  let z = state.value
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}

/** Hash a seed (number or string) to 32 bits. */
export const seedToInt = (seed: number | string): number => {
  if (typeof seed === "number" && Number.isSafeInteger(seed)) return seed | 0
  const text = String(seed)
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h | 0
}

export class Random {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number | string) {
    const state = { value: seedToInt(seed) }
    this.a = splitmix32(state)
    this.b = splitmix32(state)
    this.c = splitmix32(state)
    this.d = splitmix32(state)
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0
    const t = this.b << 9
    this.c ^= this.a
    this.d ^= this.b
    this.b ^= this.c
    this.a ^= this.d
    this.c ^= t
    this.d = rotl(this.d, 11)
    return result
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296
  }

  /** `true` with probability `p`; no draw is made when `p` is 0 or 1, so enabling a knob elsewhere does not shift the stream. */
  chance(p: number): boolean {
    if (p <= 0) return false
    if (p >= 1) return true
    return this.next() < p
  }

  /** A standard normal variate (Box-Muller). */
  normal(): number {
    let u = this.next()
    while (u === 0) u = this.next()
    const v = this.next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }

  /** A new generator whose stream is derived from this one. */
  fork(): Random {
    return new Random(this.nextUint32() | 0)
  }
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k))
