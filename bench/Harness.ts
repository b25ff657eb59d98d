/**
 * The benchmark harness: what every benchmark in `bench/` shares.
 *
 * - `Row` / `Benchmark`: the shape a benchmark module exports (`export const benchmark: Benchmark`).
 * - `alternate`: run the subjects of one case side by side, alternating their order over several rounds,
 *   and keep the median of each.
 * - `median`, `ratio`, `rows`: the arithmetic and the conversion to result rows.
 * - `cpuUsage` / `cpuMillisSince` / `measure`: wall time and CPU time of this process.
 * - `collectGarbage` / `heapUsed`: heap after a full collection (the bench runs with `--expose-gc`).
 * - `startChild` / `serveChild`: a load generator or server in a child process, driven over IPC, that also
 *   answers for its own CPU time, so a transport bench can charge every process its share.
 *
 * @since 0.1.0
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { fileURLToPath, pathToFileURL } from "node:url"

/**
 * One measured figure: the median over rounds of one subject on one case.
 *
 * @since 0.1.0
 */
export interface Row {
  /** What is measured, e.g. `"spawn conversations"`. */
  readonly case: string
  /** Who is measured: `"diesel"` (ours) or a baseline (`"effect"`, `"raw node"`, `"ioredis"`, ...). */
  readonly subject: string
  readonly value: number
  /** e.g. `"msgs/s"`, `"bytes/conversation"`. */
  readonly unit: string
  readonly higherIsBetter: boolean
}

/**
 * What a benchmark module exports as `benchmark`.
 *
 * @since 0.1.0
 */
export interface Benchmark {
  readonly name: string
  readonly run: (options: { readonly smoke: boolean }) => Promise<ReadonlyArray<Row>>
}

/**
 * The name of our subject in every benchmark; ratios are ours divided by each baseline.
 *
 * @since 0.1.0
 */
export const OURS = "diesel"

/**
 * Whether `subject` is ours: `"diesel"`, or a label starting with it (`"diesel UDPConnection"`).
 *
 * @since 0.1.0
 */
export const isOurs = (subject: string): boolean => subject === OURS || subject.startsWith(`${OURS} `)

/**
 * One contender of a case: `run` performs one round and returns its figure (a rate, a size, ...).
 *
 * @since 0.1.0
 */
export interface Subject {
  readonly name: string
  readonly run: () => Promise<number>
}

/**
 * The outcome of `alternate` for one subject.
 *
 * @since 0.1.0
 */
export interface Measured {
  readonly subject: string
  readonly median: number
  /** Every counted round, in the order they ran. */
  readonly samples: ReadonlyArray<number>
}

/**
 * The median of a non-empty list of numbers.
 *
 * @since 0.1.0
 */
export const median = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) throw new RangeError("median of an empty list")
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  const upper = sorted[middle] ?? 0
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? 0) + upper) / 2
}

/**
 * `ours / baseline` (`NaN` when the baseline is 0). Above 1 is better for ours when higher is better,
 * below 1 when lower is better.
 *
 * @since 0.1.0
 */
export const ratio = (ours: number, baseline: number): number => (baseline === 0 ? Number.NaN : ours / baseline)

/**
 * Run `subjects` side by side: `warmup` uncounted rounds, then `rounds` counted ones, each round running
 * every subject once, in forward order on even rounds and reverse order on odd ones (so neither always
 * runs first, on a warm or a cold machine). Returns each subject's median.
 *
 * @since 0.1.0
 */
export const alternate = async (
  rounds: number,
  subjects: ReadonlyArray<Subject>,
  options?: { readonly warmup?: number | undefined; readonly log?: ((line: string) => void) | undefined }
): Promise<ReadonlyArray<Measured>> => {
  if (!Number.isSafeInteger(rounds) || rounds < 1) throw new RangeError(`rounds must be >= 1, got ${rounds}`)
  const warmup = options?.warmup ?? 1
  const samples = new Map<string, Array<number>>(subjects.map((subject) => [subject.name, []]))
  for (let round = 0; round < warmup + rounds; round++) {
    const order = round % 2 === 0 ? subjects : [...subjects].reverse()
    for (const subject of order) {
      const value = await subject.run()
      if (round >= warmup) samples.get(subject.name)?.push(value)
      options?.log?.(
        `    ${round < warmup ? "warmup" : `round ${round - warmup + 1}/${rounds}`} ${subject.name}: ${format(value)}`
      )
    }
  }
  return subjects.map((subject) => {
    const values = samples.get(subject.name) ?? []
    return { subject: subject.name, median: median(values), samples: values }
  })
}

/**
 * The result rows of one case.
 *
 * @since 0.1.0
 */
export const rows = (
  caseName: string,
  unit: string,
  higherIsBetter: boolean,
  measured: ReadonlyArray<Measured>
): ReadonlyArray<Row> =>
  measured.map((m) => ({ case: caseName, subject: m.subject, value: m.median, unit, higherIsBetter }))

/**
 * A number for tables: 3 significant digits, thousands separated.
 *
 * @since 0.1.0
 */
export const format = (value: number): string => {
  if (!Number.isFinite(value)) return String(value)
  const abs = Math.abs(value)
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US")
  return Number(value.toPrecision(3)).toLocaleString("en-US", { maximumFractionDigits: 3 })
}

/**
 * Progress output of benchmarks (stderr, so stdout holds only the tables).
 *
 * @since 0.1.0
 */
export const log = (line: string): void => {
  process.stderr.write(`${line}\n`)
}

// ---------------------------------------------------------------------------------------------------------
// time and CPU

/**
 * Monotonic time in milliseconds.
 *
 * @since 0.1.0
 */
export const now = (): number => performance.now()

/**
 * This process's CPU time so far (user and system, microseconds).
 *
 * @since 0.1.0
 */
export const cpuUsage = (): NodeJS.CpuUsage => process.cpuUsage()

/**
 * CPU milliseconds (user + system) spent since `start` (from `cpuUsage`, here or in a child).
 *
 * @since 0.1.0
 */
export const cpuMillisBetween = (start: NodeJS.CpuUsage, end: NodeJS.CpuUsage): number =>
  (end.user - start.user + (end.system - start.system)) / 1000

/**
 * CPU milliseconds this process spent since `start`.
 *
 * @since 0.1.0
 */
export const cpuMillisSince = (start: NodeJS.CpuUsage): number => cpuMillisBetween(start, process.cpuUsage())

/**
 * Run `f` and report how long it took, in wall and in this process's CPU milliseconds.
 *
 * @since 0.1.0
 */
export const measure = async <A>(
  f: () => Promise<A>
): Promise<{ readonly value: A; readonly wallMillis: number; readonly cpuMillis: number }> => {
  const cpu = process.cpuUsage()
  const start = now()
  const value = await f()
  const wallMillis = now() - start
  return { value, wallMillis, cpuMillis: cpuMillisSince(cpu) }
}

// ---------------------------------------------------------------------------------------------------------
// heap

const gcFunction = (): (() => void) => {
  const gc: unknown = Reflect.get(globalThis, "gc")
  if (typeof gc !== "function") {
    throw new Error("heap measurements need node --expose-gc (run the benchmarks with `pnpm bench`)")
  }
  return () => {
    Reflect.apply(gc, undefined, [])
  }
}

/**
 * Whether this process can force garbage collections (`--expose-gc`).
 *
 * @since 0.1.0
 */
export const canCollectGarbage = (): boolean => typeof Reflect.get(globalThis, "gc") === "function"

/**
 * Force full garbage collections until the heap stops shrinking (at most 5). Throws when the process was
 * not started with `--expose-gc`.
 *
 * @since 0.1.0
 */
export const collectGarbage = (): void => {
  const gc = gcFunction()
  let previous = Number.POSITIVE_INFINITY
  for (let i = 0; i < 5; i++) {
    gc()
    const used = process.memoryUsage().heapUsed
    if (used >= previous) return
    previous = used
  }
}

/**
 * Bytes of JS heap in use after a full collection.
 *
 * @since 0.1.0
 */
export const heapUsed = (): number => {
  collectGarbage()
  return process.memoryUsage().heapUsed
}

// ---------------------------------------------------------------------------------------------------------
// child processes

/** A request from the parent to a child. */
interface Request {
  readonly id: number
  readonly type: string
  readonly payload: unknown
}

/** A child's answer to a request, or its readiness signal (`id` 0). */
interface Reply {
  readonly id: number
  readonly ok: boolean
  readonly value?: unknown
  readonly error?: string
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

const isReply = (value: unknown): value is Reply =>
  isRecord(value) && typeof value.id === "number" && typeof value.ok === "boolean"

const isRequest = (value: unknown): value is Request =>
  isRecord(value) && typeof value.id === "number" && typeof value.type === "string"

const isCpuUsage = (value: unknown): value is NodeJS.CpuUsage =>
  isRecord(value) && typeof value.user === "number" && typeof value.system === "number"

/**
 * A benchmark script running in a child process.
 *
 * @since 0.1.0
 */
export interface Child {
  readonly pid: number | undefined
  /** Send `type` with `payload` to the child's handler of that name and wait for its answer. */
  readonly request: (type: string, payload?: unknown) => Promise<unknown>
  /** The child's CPU time so far. */
  readonly cpuUsage: () => Promise<NodeJS.CpuUsage>
  /** Ask the child to exit and wait until it has. */
  readonly stop: () => Promise<void>
}

const tsxLoader = import.meta.resolve("tsx")

/** The parent's `--conditions` flags, so a child resolves `@diesel/*` (source or dist) as its parent does. */
const conditions = (): ReadonlyArray<string> =>
  process.execArgv.filter((flag) => flag.startsWith("--conditions") || flag === "-C")

/**
 * Start `script` (a `.ts` file; a path or `file:` URL, usually `new URL("./x-child.ts", import.meta.url)`)
 * in a child Node process with tsx, `--expose-gc` and this process's `--conditions`, and wait until it
 * called `serveChild`. The child's stdout and stderr go to this process's stderr.
 *
 * @since 0.1.0
 */
export const startChild = (
  script: string | URL,
  options?: { readonly args?: ReadonlyArray<string> | undefined; readonly env?: NodeJS.ProcessEnv | undefined }
): Promise<Child> => {
  const path = typeof script === "string" ? script : fileURLToPath(script)
  const child: ChildProcess = spawn(
    process.execPath,
    ["--expose-gc", ...conditions(), "--import", tsxLoader, path, ...(options?.args ?? [])],
    { stdio: ["ignore", "pipe", "pipe", "ipc"], env: { ...process.env, ...options?.env } }
  )
  child.stdout?.pipe(process.stderr)
  child.stderr?.pipe(process.stderr)
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  let nextId = 0
  let exited = false
  const exit = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = true
      for (const waiter of pending.values()) {
        waiter.reject(new Error(`child ${path} exited (code ${code}, signal ${signal}) before answering`))
      }
      pending.clear()
      resolve()
    })
  })
  child.on("message", (message: unknown) => {
    if (!isReply(message)) return
    const waiter = pending.get(message.id)
    if (waiter === undefined) return
    pending.delete(message.id)
    if (message.ok) waiter.resolve(message.value)
    else waiter.reject(new Error(`child ${path}: ${message.error ?? "failed"}`))
  })
  const request = (type: string, payload?: unknown): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (exited) {
        reject(new Error(`child ${path} has exited`))
        return
      }
      const id = ++nextId
      pending.set(id, { resolve, reject })
      const message: Request = { id, type, payload }
      child.send(message, (error) => {
        if (error !== null && pending.delete(id)) reject(error)
      })
    })
  const handle: Child = {
    pid: child.pid,
    request,
    cpuUsage: async () => {
      const usage = await request("cpuUsage")
      if (!isCpuUsage(usage)) throw new Error(`child ${path} answered cpuUsage with ${JSON.stringify(usage)}`)
      return usage
    },
    stop: async () => {
      if (!exited && child.connected) child.disconnect()
      await exit
    }
  }
  // readiness: the child answers with id 0 once its handlers are installed
  return new Promise((resolve, reject) => {
    pending.set(0, { resolve: () => resolve(handle), reject })
    child.once("error", (error) => {
      if (pending.delete(0)) reject(error)
    })
  })
}

/**
 * The handlers of a child script, by request type. `cpuUsage` and `memoryUsage` are built in.
 *
 * @since 0.1.0
 */
export type Handlers = Readonly<Record<string, (payload: unknown) => unknown>>

/**
 * In a child script: answer the parent's requests with `handlers`, and exit when the parent disconnects
 * (or dies).
 *
 * @example
 * ```ts
 * // bench/udp-load.ts, started with startChild(new URL("./udp-load.ts", import.meta.url))
 * import { serveChild } from "./Harness.js"
 * serveChild({ blast: async (payload) => ({ sent: 1000 }) })
 * ```
 *
 * @since 0.1.0
 */
export const serveChild = (handlers: Handlers): void => {
  const send = process.send?.bind(process)
  if (send === undefined) throw new Error("serveChild: this process was not started with an IPC channel")
  const builtins: Handlers = {
    cpuUsage: () => process.cpuUsage(),
    memoryUsage: () => process.memoryUsage()
  }
  process.on("message", (message: unknown) => {
    if (!isRequest(message)) return
    const handler = handlers[message.type] ?? builtins[message.type]
    const reply = (r: Reply) => {
      if (process.connected) send(r)
    }
    if (handler === undefined) {
      reply({ id: message.id, ok: false, error: `no handler for ${message.type}` })
      return
    }
    Promise.resolve()
      .then(() => handler(message.payload))
      .then(
        (value) => reply({ id: message.id, ok: true, value }),
        (error: unknown) =>
          reply({
            id: message.id,
            ok: false,
            error: error instanceof Error ? (error.stack ?? error.message) : String(error)
          })
      )
  })
  process.once("disconnect", () => process.exit(0))
  send({ id: 0, ok: true } satisfies Reply)
}

const ratioText = (row: Row, ours: Row | undefined): string => {
  if (ours === undefined || isOurs(row.subject)) return ""
  const r = ratio(ours.value, row.value)
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : "n/a"
}

/**
 * One markdown table for a benchmark: every case, every subject, and ours divided by each baseline.
 *
 * @since 0.1.0
 */
export const markdownTable = (name: string, rows: ReadonlyArray<Row>, error?: string): string => {
  const lines = [`### ${name}`, "", `| case | subject | median | unit | ${OURS} ÷ subject |`, "|---|---|--:|---|--:|"]
  for (const caseName of new Set(rows.map((row) => row.case))) {
    const caseRows = rows.filter((row) => row.case === caseName)
    const ours = caseRows.find((row) => isOurs(row.subject))
    caseRows.forEach((row, index) => {
      const caseCell = index === 0 ? `${caseName} ${row.higherIsBetter ? "↑" : "↓"}` : ""
      lines.push(`| ${caseCell} | ${row.subject} | ${format(row.value)} | ${row.unit} | ${ratioText(row, ours)} |`)
    })
  }
  if (error !== undefined) lines.push("", `**failed**: ${error.split("\n")[0] ?? ""}`)
  return lines.join("\n")
}

/**
 * `true` when the module with this `import.meta.url` is the script node was started with.
 *
 * @since 0.1.0
 */
export const isMain = (moduleUrl: string): boolean =>
  process.argv[1] !== undefined && moduleUrl === pathToFileURL(process.argv[1]).href

/**
 * Run one benchmark on its own (`tsx bench/udp.ts [--smoke]`): print its table and write
 * `bench/results/<name>.json` and `.md`.
 *
 * @since 0.1.0
 */
export const runAlone = async (benchmark: Benchmark): Promise<void> => {
  const rows = await benchmark.run({ smoke: process.argv.includes("--smoke") })
  const table = markdownTable(benchmark.name, rows)
  const dir = fileURLToPath(new URL("./results/", import.meta.url))
  mkdirSync(dir, { recursive: true })
  writeFileSync(`${dir}${benchmark.name}.json`, `${JSON.stringify(rows, null, 2)}\n`)
  writeFileSync(`${dir}${benchmark.name}.md`, `${table}\n`)
  process.stdout.write(`${table}\n`)
}
