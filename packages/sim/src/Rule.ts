/**
 * Per-packet fault injection. A rule sees every packet as it is sent (before the link model) and
 * decides: pass it on, drop it, or delay it. Rules are plain synchronous functions, so they are
 * deterministic; a rule may keep its own state (count packets, drop the third SYN, ...).
 *
 * @example
 * ```ts
 * import { Rule } from "@diesel/sim"
 *
 * // drop every TCP SYN to port 6379 for the first second
 * const noRedis: Rule.Rule = (packet) =>
 *   packet.flags === "SYN" && packet.to.port === 6379 && packet.sentAt < 1000 ? Rule.drop : Rule.pass
 * ```
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import type { Packet } from "./Trace.js"

/**
 * The decision for one packet.
 *
 * @since 0.1.0
 */
export type Verdict =
  | { readonly _tag: "Pass" }
  | { readonly _tag: "Drop" }
  | { readonly _tag: "Delay"; readonly millis: number }

/**
 * A per-packet hook.
 *
 * @since 0.1.0
 */
export type Rule = (packet: Packet) => Verdict

/**
 * Let the packet through to the link model.
 *
 * @since 0.1.0
 */
export const pass: Verdict = { _tag: "Pass" }

/**
 * Drop the packet (traced with reason `"rule"`).
 *
 * @since 0.1.0
 */
export const drop: Verdict = { _tag: "Drop" }

/**
 * Delay the packet by `duration` on top of the link's latency.
 *
 * @since 0.1.0
 */
export const delay = (duration: Duration.Input): Verdict => ({
  _tag: "Delay",
  millis: Duration.toMillis(Duration.fromInputUnsafe(duration))
})

/**
 * A rule that applies `verdict` to the packets matching `predicate` and passes the rest.
 *
 * @since 0.1.0
 */
export const when =
  (predicate: (packet: Packet) => boolean, verdict: Verdict): Rule =>
  (packet) =>
    predicate(packet) ? verdict : pass

/**
 * Apply `verdict` only to the first `n` packets matching `predicate`.
 *
 * @since 0.1.0
 */
export const firstN = (n: number, predicate: (packet: Packet) => boolean, verdict: Verdict): Rule => {
  let remaining = n
  return (packet) => {
    if (remaining <= 0 || !predicate(packet)) return pass
    remaining--
    return verdict
  }
}

/**
 * Packets going from host `from` to host `to`.
 *
 * @since 0.1.0
 */
export const between =
  (from: string, to: string) =>
  (packet: Packet): boolean =>
    packet.from.host === from && packet.to.host === to
