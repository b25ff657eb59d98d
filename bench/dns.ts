/**
 * DNS: 20,000 A lookups with 50 in flight against a local knot, same name and unique names (`*.wild`), cache
 * off and on. diesel's resolver vs node:dns's `Resolver` (c-ares) vs `dns2`, side by side in one run, rounds
 * alternating the order of the subjects; the value is the median of the rounds, in queries per second, and
 * the CPU time of this process per query (user + system, `process.cpuUsage`: knot runs in its own process).
 * Every subject is driven the same way: 50 workers, each asking its next name when its answer is in.
 *
 * Run alone: `pnpm exec tsx --conditions=@diesel/source bench/dns.ts [--smoke]`
 */
import { promises as NodeDns } from "node:dns"
import { Resolver, ResolverConfig } from "@diesel/clients/dns"
import DNS2 from "dns2"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as KnotServer from "../packages/clients/test/harness/KnotServer.js"
import { isMain, type Row, runAlone } from "./Harness.js"

const inFlight = 50

type Lookup = (name: string) => Promise<void>

interface Subject {
  readonly name: string
  /** Sets up a client for one measurement (cache on or off), returns its batch runner and a cleanup. */
  readonly setup: (
    knot: KnotServer.KnotServer,
    cache: boolean
  ) => Promise<{ readonly run: (names: ReadonlyArray<string>) => Promise<void>; readonly close: () => Promise<void> }>
}

/** Runs `lookup` over `names` with `inFlight` workers, as a user of a promise API would. */
const pool = async (names: ReadonlyArray<string>, lookup: Lookup): Promise<void> => {
  let next = 0
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++]
      if (name !== undefined) await lookup(name)
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
}

const diesel: Subject = {
  name: "diesel Resolver",
  setup: async (knot, cache) => {
    const scope = Scope.makeUnsafe()
    const resolver = await Effect.runPromise(
      Resolver.make(ResolverConfig.make({ nameservers: [knot.address], cache, timeout: "2 seconds" })).pipe(
        Scope.provide(scope)
      )
    )
    return {
      // 50 fibers, each resolving the next name when its answer is in: the same shape as `pool` below.
      run: (names) => {
        let next = 0
        const worker = Effect.whileLoop({
          while: () => next < names.length,
          body: () => resolver.resolve(names[next++] ?? "", "A"),
          step: () => undefined
        })
        return Effect.runPromise(
          Effect.all(
            Array.from({ length: inFlight }, () => worker),
            { concurrency: "unbounded", discard: true }
          )
        )
      },
      close: () => Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }
}

const node: Subject = {
  name: "node:dns Resolver",
  setup: async (knot) => {
    const resolver = new NodeDns.Resolver({ timeout: 2000, tries: 2 })
    resolver.setServers([knot.address])
    return {
      run: (names) =>
        pool(names, async (name) => {
          await resolver.resolve4(name)
        }),
      close: async () => resolver.cancel()
    }
  }
}

const dns2: Subject = {
  name: "dns2",
  setup: async (knot) => {
    const client = new DNS2({ nameServers: [knot.host], port: knot.port, timeout: 2000 })
    return {
      run: (names) =>
        pool(names, async (name) => {
          const answer = await client.resolveA(name)
          if (answer.answers.length === 0) throw new Error(`dns2: no answer for ${name}`)
        }),
      close: async () => undefined
    }
  }
}

const subjects: ReadonlyArray<Subject> = [diesel, node, dns2]

interface Case {
  readonly name: string
  readonly cache: boolean
  readonly names: (round: number, count: number) => ReadonlyArray<string>
}

const same = (_round: number, count: number) => Array.from({ length: count }, () => "www.example.test")
// Unique per round and subject run too, so that no cache (ours or c-ares') sees a name twice.
let uniqueRun = 0
const unique = (round: number, count: number) => {
  const run = uniqueRun++
  return Array.from({ length: count }, (_, i) => `h${round}-${run}-${i}.wild.example.test`)
}

const cases: ReadonlyArray<Case> = [
  { name: "same name, cache off", cache: false, names: same },
  { name: "unique names, cache off", cache: false, names: unique },
  { name: "same name, cache on", cache: true, names: same },
  { name: "unique names, cache on", cache: true, names: unique }
]

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

export const benchmark = {
  name: "dns",
  run: async (options: { readonly smoke: boolean }): Promise<ReadonlyArray<Row>> => {
    const count = options.smoke ? 1_000 : 20_000
    const rounds = options.smoke ? 1 : 5
    const scope = Scope.makeUnsafe()
    const knot = await Effect.runPromise(KnotServer.make.pipe(Scope.provide(scope)))
    try {
      const results = new Map<string, Array<number>>()
      for (const benchCase of cases) {
        for (let round = 0; round < rounds; round++) {
          // Rotate who goes first each round.
          const order = subjects.map((_, i) => subjects[(i + round) % subjects.length]).filter((s) => s !== undefined)
          for (const subject of order) {
            const names = benchCase.names(round, count)
            const client = await subject.setup(knot, benchCase.cache)
            try {
              // Warm up sockets and code paths outside the measurement.
              await client.run(["www.example.test", "mail1.example.test"])
              const cpu = process.cpuUsage()
              const start = performance.now()
              await client.run(names)
              const seconds = (performance.now() - start) / 1000
              const used = process.cpuUsage(cpu)
              const record = (key: string, value: number) => {
                const list = results.get(key) ?? []
                list.push(value)
                results.set(key, list)
              }
              record(`${benchCase.name}\u0000${subject.name}`, count / seconds)
              record(`${benchCase.name}\u0000${subject.name}\u0000cpu`, (used.user + used.system) / count)
            } finally {
              await client.close()
            }
          }
        }
      }
      const rows: Array<Row> = []
      for (const benchCase of cases) {
        for (const subject of subjects) {
          rows.push({
            case: benchCase.name,
            subject: subject.name,
            value: Math.round(median(results.get(`${benchCase.name}\u0000${subject.name}`) ?? [])),
            unit: "queries/s",
            higherIsBetter: true
          })
        }
        for (const subject of subjects) {
          rows.push({
            case: `${benchCase.name}, CPU per query`,
            subject: subject.name,
            value: Math.round(100 * median(results.get(`${benchCase.name}\u0000${subject.name}\u0000cpu`) ?? [])) / 100,
            unit: "µs CPU/query",
            higherIsBetter: false
          })
        }
      }
      return rows
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }
}

if (isMain(import.meta.url)) await runAlone(benchmark)
