/**
 * diesel's `resolve_names.py`: resolve names while another conversation keeps running. A ticking loop prints
 * every 100 ms; meanwhile names are resolved one after the other through diesel's resolver (datagrams on the
 * event loop, nothing on the libuv thread pool), and a name that does not exist is a typed error, not a crash.
 *
 * Run: `pnpm exec tsx --conditions=@diesel/source examples/resolve-names.ts [nameserver] [names...]`
 * (without a name server, the system's /etc/resolv.conf is used).
 */

import { Resolver } from "@diesel/clients/dns"
import { NodeRuntime } from "@effect/platform-node"
import * as Console from "effect/Console"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"

/** What the example printed: ticks and resolutions, in order. */
export type Event =
  | { readonly _tag: "Tick"; readonly n: number }
  | { readonly _tag: "Resolved"; readonly name: string; readonly addresses: ReadonlyArray<string> }
  | { readonly _tag: "Failed"; readonly name: string; readonly error: string }

/**
 * Starts the ticker, resolves `names`, then stops the ticker. Needs a `Resolver`.
 */
export const program = (names: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const events = yield* Ref.make<ReadonlyArray<Event>>([])
    const record = (event: Event) =>
      Ref.update(events, (list) => [...list, event]).pipe(
        Effect.andThen(
          Console.log(
            event._tag === "Tick"
              ? `tick ${event.n}`
              : event._tag === "Resolved"
                ? `${event.name} -> ${event.addresses.join(", ")}`
                : `${event.name}: ${event.error}`
          )
        )
      )
    const ticking = yield* Deferred.make<void>()
    // The other conversation: it keeps running while names are being resolved.
    const ticker = yield* Effect.forkChild(
      Effect.repeat(
        Effect.gen(function* () {
          const count = (yield* Ref.get(events)).filter((event) => event._tag === "Tick").length
          yield* record({ _tag: "Tick", n: count + 1 })
          yield* Deferred.succeed(ticking, undefined)
        }),
        Schedule.spaced("100 millis")
      )
    )
    yield* Deferred.await(ticking)
    for (const name of names) {
      yield* Resolver.lookup(name, { family: "IPv4" }).pipe(
        Effect.matchEffect({
          onSuccess: (addresses) => record({ _tag: "Resolved", name, addresses }),
          onFailure: (error) => record({ _tag: "Failed", name, error: `${error._tag}: ${error.message}` })
        })
      )
    }
    yield* Fiber.interrupt(ticker)
    return yield* Ref.get(events)
  })

/** The resolver: the given name server, or the system configuration. */
export const resolverLayer = (nameserver: string | undefined): Layer.Layer<Resolver.Resolver> =>
  nameserver === undefined ? Resolver.layerSystem() : Resolver.layer({ nameservers: [nameserver] })

if (import.meta.url === `file://${process.argv[1]}`) {
  const [nameserver, ...names] = process.argv.slice(2)
  const toResolve = names.length > 0 ? names : ["localhost", "example.com", "does-not-exist.invalid"]
  NodeRuntime.runMain(program(toResolve).pipe(Effect.provide(resolverLayer(nameserver))))
}
