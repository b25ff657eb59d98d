/**
 * Run the same test cases on the Node network and on a simulated one (`@diesel/sim/vitest`).
 *
 * @example
 * ```ts
 * import { onBothNetworks } from "@diesel/sim/vitest"
 *
 * onBothNetworks("echo", (live) => {
 *   live("answers every line", () => Effect.gen(function* () {
 *     // bind, listen and connect through @diesel/core's Network: real sockets, then the simulation
 *   }))
 * })
 * ```
 *
 * @since 0.1.0
 */
import { describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as SimNetwork from "./SimNetwork.js"

/**
 * A test case body, as `it.live` takes it.
 *
 * @since 0.1.0
 */
export type Case = () => Effect.Effect<unknown, unknown, Scope.Scope>

/**
 * Registers a case (`it.live` or `it.effect`); the body runs on the network of the enclosing `onBothNetworks`.
 *
 * @since 0.1.0
 */
export type NetworkCase = (name: string, self: Case, timeout?: number) => void

/**
 * Registers `cases` twice, once on the Node network (real sockets) and once on a fresh simulated network
 * (perfect links, seed 1): the behaviour they check is defined for both. The case's scope closes inside the
 * network, so its servers and clients shut down while the simulation still delivers their FINs.
 *
 * @since 0.1.0
 */
export const onBothNetworks = (
  title: string,
  cases: (live: NetworkCase, effect: NetworkCase, network: "node" | "sim") => void
): void => {
  for (const { name, provide } of SimNetwork.providers({ seed: 1 })) {
    describe(`${title} (${name})`, () => {
      cases(
        (caseName, self, timeout) => it.live(caseName, () => provide(Effect.scoped(self())), timeout),
        (caseName, self, timeout) => it.effect(caseName, () => provide(Effect.scoped(self())), timeout),
        name
      )
    })
  }
}
