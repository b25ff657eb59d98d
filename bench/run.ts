/**
 * `pnpm bench [--smoke] [--only name[,name]] [--source]`: run every registered benchmark, print a markdown
 * table per benchmark, and write bench/results/results.json and bench/results/results.md.
 *
 * It first builds the packages (`tsc -b tsconfig.build.json`) and then re-runs itself in a fresh Node
 * with `--expose-gc` (heap figures need forced GCs) that resolves `@diesel/*` to their compiled `dist/`.
 * `--source` skips the build and runs the TypeScript sources through tsx instead (quicker to iterate,
 * but tsx's transform slows closure-heavy code down, so the figures are not the ones users get).
 * Exits non-zero when a benchmark module fails to load or a benchmark throws; the others still run.
 *
 * @since 0.1.0
 */
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import os from "node:os"
import { basename, dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { type Benchmark, canCollectGarbage, isOurs, log, markdownTable, now, OURS, type Row, ratio } from "./Harness.js"

/** Benchmark modules, in run order; a module that does not exist (yet) is skipped. */
const modules = ["./core.ts", "./udp.ts", "./tcp.ts", "./redis.ts", "./dns.ts", "./sim.ts"]

// The launcher: unless this is already the measuring process, build the packages (benchmarks measure the
// compiled dist/ that users run; tsx's on-the-fly transform adds a `__name` call to every closure it
// creates) and re-run this file in a fresh Node with --expose-gc.
if (process.env.DIESEL_BENCH_INNER !== "1") {
  const fromSource = process.argv.includes("--source")
  const root = fileURLToPath(new URL("../", import.meta.url))
  if (!fromSource) {
    const tsc = join(dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin", "tsc")
    const build = spawnSync(process.execPath, [tsc, "-b", "tsconfig.build.json"], { cwd: root, stdio: "inherit" })
    if (build.status !== 0) {
      log("bench: building the packages failed")
      process.exit(build.status ?? 1)
    }
  }
  const run = spawnSync(
    process.execPath,
    [
      "--expose-gc",
      "--import",
      import.meta.resolve("tsx"),
      ...(fromSource ? ["--conditions=@diesel/source"] : []),
      fileURLToPath(import.meta.url),
      ...process.argv.slice(2)
    ],
    { stdio: "inherit", env: { ...process.env, DIESEL_BENCH_INNER: "1" } }
  )
  process.exit(run.status ?? 1)
}
if (!canCollectGarbage()) throw new Error("bench: the measuring process must run with --expose-gc")

const { values } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    only: { type: "string" },
    source: { type: "boolean", default: false }
  },
  allowPositionals: false
})
const smoke = values.smoke
const only = values.only
  ?.split(",")
  .map((name) => name.trim())
  .filter((name) => name.length > 0)

interface Outcome {
  readonly name: string
  readonly module: string
  readonly seconds: number
  readonly rows: ReadonlyArray<Row>
  readonly error?: string
}

const isBenchmark = (value: unknown): value is Benchmark =>
  typeof value === "object" &&
  value !== null &&
  typeof Reflect.get(value, "name") === "string" &&
  typeof Reflect.get(value, "run") === "function"

const errorText = (error: unknown): string =>
  error instanceof Error ? (error.stack ?? error.message) : JSON.stringify(error)

/** One markdown table per benchmark. */
const table = (outcome: Outcome): string => markdownTable(outcome.name, outcome.rows, outcome.error)

const cpus = os.cpus()
const environment = {
  node: process.version,
  v8: process.versions.v8,
  platform: `${process.platform} ${os.release()} ${process.arch}`,
  cpu: cpus[0]?.model ?? "unknown",
  cores: cpus.length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  date: new Date().toISOString(),
  smoke,
  packages: values.source ? "TypeScript sources through tsx (--source)" : "compiled dist/ (tsc)"
}

if (process.env.DIESEL_BENCH_MODULE !== undefined && process.env.DIESEL_BENCH_OUT !== undefined) {
  const loaded: unknown = await import(new URL(process.env.DIESEL_BENCH_MODULE, import.meta.url).href)
  const exported: unknown = typeof loaded === "object" && loaded !== null ? Reflect.get(loaded, "benchmark") : undefined
  if (!isBenchmark(exported)) throw new Error(`${process.env.DIESEL_BENCH_MODULE} does not export a benchmark`)
  writeFileSync(process.env.DIESEL_BENCH_OUT, JSON.stringify(await exported.run({ smoke })))
  process.exit(0)
}

/**
 * Run one benchmark module in a process of its own (same flags), so that what one benchmark leaves on the
 * heap (100,000 idle conversations, say) does not slow down the next: its rows come back through a file.
 */
const runIsolated = (module: string): Promise<ReadonlyArray<Row>> =>
  new Promise((resolve, reject) => {
    const out = join(mkdtempSync(join(os.tmpdir(), "diesel-bench-")), "rows.json")
    const child = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
      {
        stdio: "inherit",
        env: { ...process.env, DIESEL_BENCH_MODULE: module, DIESEL_BENCH_OUT: out }
      }
    )
    child.on("error", reject)
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`${module}: benchmark process exited with ${code}`))
      try {
        resolve(JSON.parse(readFileSync(out, "utf8")) as ReadonlyArray<Row>)
      } catch (error) {
        reject(error)
      } finally {
        rmSync(dirname(out), { recursive: true, force: true })
      }
    })
  })

const outcomes: Array<Outcome> = []
let failed = false
const started = now()
log(`diesel benchmarks${smoke ? " (smoke)" : ""}: node ${environment.node}, ${environment.cpu} x${environment.cores}`)

for (const module of modules) {
  const url = new URL(module, import.meta.url)
  if (!existsSync(url)) continue
  const file = basename(module, ".ts")
  let benchmark: Benchmark
  try {
    const loaded: unknown = await import(url.href)
    const exported: unknown =
      typeof loaded === "object" && loaded !== null ? Reflect.get(loaded, "benchmark") : undefined
    if (!isBenchmark(exported)) throw new Error(`${module} does not export \`benchmark: Benchmark\``)
    benchmark = exported
  } catch (error) {
    if (only !== undefined && !only.includes(file)) continue
    failed = true
    log(`${module}: failed to load\n${errorText(error)}`)
    outcomes.push({ name: file, module, seconds: 0, rows: [], error: `failed to load: ${errorText(error)}` })
    continue
  }
  if (only !== undefined && !only.includes(benchmark.name) && !only.includes(file)) continue
  log(`${benchmark.name} (${module})`)
  const start = now()
  try {
    const rows = await runIsolated(module)
    outcomes.push({ name: benchmark.name, module, seconds: (now() - start) / 1000, rows })
  } catch (error) {
    failed = true
    log(`${benchmark.name} failed\n${errorText(error)}`)
    outcomes.push({ name: benchmark.name, module, seconds: (now() - start) / 1000, rows: [], error: errorText(error) })
  }
}

if (only !== undefined) {
  const ran = new Set(outcomes.flatMap((outcome) => [outcome.name, basename(outcome.module, ".ts")]))
  const unknown = only.filter((name) => !ran.has(name))
  if (unknown.length > 0) {
    failed = true
    log(`--only: no benchmark named ${unknown.join(", ")}`)
  }
}

const ratios = outcomes.flatMap((outcome) =>
  outcome.rows.flatMap((row) => {
    const ours = outcome.rows.find((r) => r.case === row.case && isOurs(r.subject))
    if (ours === undefined || isOurs(row.subject)) return []
    return [{ benchmark: outcome.name, case: row.case, baseline: row.subject, ratio: ratio(ours.value, row.value) }]
  })
)

const header = [
  `## Benchmark results${smoke ? " (smoke run: tiny counts, figures not meaningful)" : ""}`,
  "",
  `Node ${environment.node} (V8 ${environment.v8}), ${environment.platform}, ${environment.cpu} x${environment.cores}, ` +
    `${environment.memoryGiB} GiB, ${environment.date}; @diesel packages: ${environment.packages}.`,
  "",
  `Medians over alternating rounds. ${OURS} ÷ subject: the ratio of our median to that subject's; ` +
    "↑ higher is better (above 1x we are ahead), ↓ lower is better (below 1x we are ahead)."
].join("\n")
const markdown = `${[header, ...outcomes.map(table)].join("\n\n")}\n`

const resultsDir = fileURLToPath(new URL("./results/", import.meta.url))
mkdirSync(resultsDir, { recursive: true })
writeFileSync(
  `${resultsDir}results.json`,
  `${JSON.stringify(
    {
      ...environment,
      seconds: (now() - started) / 1000,
      benchmarks: outcomes.map(({ name, module, seconds, rows, error }) => ({ name, module, seconds, error, rows })),
      ratios
    },
    null,
    2
  )}\n`
)
writeFileSync(`${resultsDir}results.md`, markdown)

process.stdout.write(`\n${markdown}`)
log(`wrote bench/results/results.json and results.md in ${((now() - started) / 1000).toFixed(1)} s`)
process.exitCode = failed || outcomes.length === 0 ? 1 : 0
