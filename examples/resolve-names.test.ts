import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as KnotServer from "../packages/clients/test/harness/KnotServer.js"
import { type Event, program, resolverLayer } from "./resolve-names.js"

it.live("resolves names while the ticker keeps running; a failing name is a typed error", () =>
  Effect.gen(function* () {
    const knot = yield* KnotServer.make
    const events = yield* program([
      "www.example.test",
      "nosuch.example.test",
      "alias3.example.test",
      "big.example.test"
    ]).pipe(Effect.provide(resolverLayer(knot.address)))
    const resolutions = events.filter((event): event is Exclude<Event, { _tag: "Tick" }> => event._tag !== "Tick")
    expect(resolutions.map((event) => [event.name, event._tag])).toEqual([
      ["www.example.test", "Resolved"],
      ["nosuch.example.test", "Failed"],
      ["alias3.example.test", "Resolved"],
      ["big.example.test", "Resolved"]
    ])
    const [www, nosuch, alias, big] = resolutions
    expect(www?._tag === "Resolved" ? [...www.addresses].sort() : []).toEqual(["10.0.0.1", "10.0.0.2"])
    expect(nosuch?._tag === "Failed" ? nosuch.error : "").toMatch(/^NxDomain/)
    expect(alias?._tag === "Resolved" ? [...alias.addresses].sort() : []).toEqual(["10.0.0.1", "10.0.0.2"])
    expect(big?._tag === "Resolved" ? big.addresses.length : 0).toBe(KnotServer.bigCount)
    // The ticker ran alongside: it ticked before the first resolution was printed.
    expect(events[0]?._tag).toBe("Tick")
  })
)
