/**
 * The model of a network path between two simulated hosts: latency (with a distribution and jitter),
 * loss, duplication, reordering, an MTU and a bandwidth. Options apply globally (`SimNetwork.make({ link })`)
 * and per link (`sim.link("a", "b", options)`), a per-link option overriding the global one field by field.
 *
 * @example
 * ```ts
 * import { Link } from "@diesel/sim"
 *
 * const wan: Link.LinkOptions = {
 *   latency: Link.normal("40 millis", "5 millis"),
 *   jitter: "2 millis",
 *   loss: 0.01,
 *   duplicate: 0.001,
 *   reorder: 0.02,
 *   mtu: 1500,
 *   bandwidth: 10_000_000 / 8
 * }
 * ```
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import type { Random } from "./internal/Random.js"

/**
 * A latency distribution, sampled once per packet.
 *
 * @since 0.1.0
 */
export type Latency =
  | { readonly _tag: "Constant"; readonly millis: number }
  | { readonly _tag: "Uniform"; readonly minMillis: number; readonly maxMillis: number }
  | { readonly _tag: "Normal"; readonly meanMillis: number; readonly stddevMillis: number }
  | { readonly _tag: "Exponential"; readonly meanMillis: number }
  | { readonly _tag: "Pareto"; readonly scaleMillis: number; readonly shape: number }

const millisOf = (input: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(input))

/**
 * Always the same latency.
 *
 * @since 0.1.0
 */
export const constant = (latency: Duration.Input): Latency => ({ _tag: "Constant", millis: millisOf(latency) })

/**
 * Uniform between `min` and `max`.
 *
 * @since 0.1.0
 */
export const uniform = (min: Duration.Input, max: Duration.Input): Latency => ({
  _tag: "Uniform",
  minMillis: millisOf(min),
  maxMillis: millisOf(max)
})

/**
 * Normal around `mean`, cut at zero.
 *
 * @since 0.1.0
 */
export const normal = (mean: Duration.Input, stddev: Duration.Input): Latency => ({
  _tag: "Normal",
  meanMillis: millisOf(mean),
  stddevMillis: millisOf(stddev)
})

/**
 * Exponential with the given mean: mostly fast, sometimes slow.
 *
 * @since 0.1.0
 */
export const exponential = (mean: Duration.Input): Latency => ({ _tag: "Exponential", meanMillis: millisOf(mean) })

/**
 * Pareto (heavy tail) with minimum `scale` and shape `alpha` (smaller = heavier tail; 1.5 to 3 is typical).
 *
 * @since 0.1.0
 */
export const pareto = (scale: Duration.Input, shape: number): Latency => ({
  _tag: "Pareto",
  scaleMillis: millisOf(scale),
  shape
})

/**
 * What a link does to the packets that cross it. Every field is optional; probabilities are in [0, 1].
 *
 * @since 0.1.0
 */
export interface LinkOptions {
  /** One-way latency: a duration (constant) or a distribution. Default 0. */
  readonly latency?: Duration.Input | Latency | undefined
  /** Added uniformly in [-jitter, +jitter] (never below zero). Jitter alone does not reorder packets. */
  readonly jitter?: Duration.Input | undefined
  /** Probability that a packet is lost. */
  readonly loss?: number | undefined
  /** Probability that a packet is delivered twice. */
  readonly duplicate?: number | undefined
  /** Probability that a packet is held back by `reorderDelay` and so overtaken by the packets sent after it. */
  readonly reorder?: number | undefined
  /** How long a reordered packet is held back. Default 10 ms. */
  readonly reorderDelay?: Duration.Input | undefined
  /** Largest IP packet (payload plus IP and UDP/TCP headers) the path carries; bigger datagrams are dropped. */
  readonly mtu?: number | undefined
  /** Bytes per second; packets queue behind each other on the link. */
  readonly bandwidth?: number | undefined
}

/**
 * `LinkOptions` with every field resolved.
 *
 * @since 0.1.0
 */
export interface LinkConfig {
  readonly latency: Latency
  readonly jitterMillis: number
  readonly loss: number
  readonly duplicate: number
  readonly reorder: number
  readonly reorderDelayMillis: number
  readonly mtu: number
  readonly bandwidth: number
}

/**
 * A perfect link: no latency, no loss, no MTU limit beyond the 64 KiB of IP.
 *
 * @since 0.1.0
 */
export const perfect: LinkConfig = {
  latency: { _tag: "Constant", millis: 0 },
  jitterMillis: 0,
  loss: 0,
  duplicate: 0,
  reorder: 0,
  reorderDelayMillis: 10,
  mtu: Number.POSITIVE_INFINITY,
  bandwidth: Number.POSITIVE_INFINITY
}

const isLatency = (input: Duration.Input | Latency): input is Latency =>
  typeof input === "object" &&
  input !== null &&
  "_tag" in input &&
  typeof input._tag === "string" &&
  (input._tag === "Constant" ||
    input._tag === "Uniform" ||
    input._tag === "Normal" ||
    input._tag === "Exponential" ||
    input._tag === "Pareto")

const probability = (name: string, value: number): number => {
  if (!(value >= 0 && value <= 1)) throw new RangeError(`link ${name} must be a probability in [0, 1], got ${value}`)
  return value
}

/**
 * Resolve options over a base configuration.
 *
 * @since 0.1.0
 */
export const resolve = (base: LinkConfig, options: LinkOptions | undefined): LinkConfig => {
  if (options === undefined) return base
  const latency = options.latency
  return {
    latency: latency === undefined ? base.latency : isLatency(latency) ? latency : constant(latency),
    jitterMillis: options.jitter === undefined ? base.jitterMillis : millisOf(options.jitter),
    loss: options.loss === undefined ? base.loss : probability("loss", options.loss),
    duplicate: options.duplicate === undefined ? base.duplicate : probability("duplicate", options.duplicate),
    reorder: options.reorder === undefined ? base.reorder : probability("reorder", options.reorder),
    reorderDelayMillis: options.reorderDelay === undefined ? base.reorderDelayMillis : millisOf(options.reorderDelay),
    mtu: options.mtu ?? base.mtu,
    bandwidth: options.bandwidth ?? base.bandwidth
  }
}

/** @internal */
export const sampleLatency = (latency: Latency, random: Random): number => {
  switch (latency._tag) {
    case "Constant":
      return latency.millis
    case "Uniform":
      return latency.minMillis + random.next() * (latency.maxMillis - latency.minMillis)
    case "Normal":
      return Math.max(0, latency.meanMillis + random.normal() * latency.stddevMillis)
    case "Exponential":
      return -Math.log(1 - random.next()) * latency.meanMillis
    case "Pareto":
      return latency.scaleMillis / (1 - random.next()) ** (1 / latency.shape)
  }
}
