/**
 * A real authoritative DNS server for tests: knot (`apt-get install knot knot-dnsutils`), started as a
 * direct child on a port free for both UDP and TCP, with a generated configuration and zones in a fresh
 * temporary directory. Ready when it answers an A query; stopped with SIGTERM, awaiting its exit.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Dgram from "node:dgram"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"

export class KnotError extends Data.TaggedError("KnotError")<{ readonly detail: string; readonly cause?: unknown }> {}

export interface KnotServer {
  readonly host: string
  readonly port: number
  /** `host:port`, as `dns.Resolver#setServers` and the resolver's config take it. */
  readonly address: string
  readonly directory: string
}

/** Number of A records at `big` (about 4.8 KB: truncated over UDP even with EDNS 4096). */
export const bigCount = 300
/** Number of A records at `medium` (about 700 bytes: over 512, so it needs EDNS to fit in one datagram). */
export const mediumCount = 40
/** Number of TXT records of 200 bytes at `bigtxt`. */
export const bigTxtCount = 40
/** The TXT longer than 255 bytes at `longtxt` (split into 255 + rest in the zone). */
export const longText = "L".repeat(300)

const quoteSplit = (text: string): string => {
  const parts: Array<string> = []
  for (let i = 0; i < text.length; i += 255) parts.push(`"${text.slice(i, i + 255)}"`)
  return parts.join(" ")
}

/** The zone `example.test`: every record type the resolver supports, and the traps. */
export const exampleZone = (): string => {
  const lines = [
    "$ORIGIN example.test.",
    "$TTL 300",
    "@ 3600 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 60",
    "@ IN NS ns1.example.test.",
    "@ IN NS ns2.example.test.",
    "@ IN MX 10 mail1.example.test.",
    "@ IN MX 20 mail2.example.test.",
    '@ IN TXT "v=spf1 -all"',
    '@ IN TXT "first" "second" "third"',
    '@ IN CAA 0 issue "letsencrypt.org"',
    '@ IN CAA 128 iodef "mailto:security@example.test"',
    "ns1 IN A 127.0.0.1",
    "ns2 IN A 127.0.0.2",
    "mail1 IN A 10.0.0.25",
    "mail2 IN A 10.0.0.26",
    "www 120 IN A 10.0.0.1",
    "www 120 IN A 10.0.0.2",
    "www IN AAAA 2001:db8::1",
    "ttl0 0 IN A 10.0.0.99",
    "alias IN CNAME www.example.test.",
    "alias3 IN CNAME alias2.example.test.",
    "alias2 IN CNAME alias1.example.test.",
    "alias1 IN CNAME www.example.test.",
    "outside IN CNAME www.elsewhere.invalid.",
    "loop1 IN CNAME loop2.example.test.",
    "loop2 IN CNAME loop1.example.test.",
    `longtxt IN TXT ${quoteSplit(longText)}`,
    "_sip._tcp IN SRV 10 60 5060 sip1.example.test.",
    "_sip._tcp IN SRV 20 40 5061 sip2.example.test.",
    "sip1 IN A 10.0.0.51",
    "sip2 IN A 10.0.0.52",
    "*.wild IN A 10.1.0.1"
  ]
  for (let i = 0; i < mediumCount; i++) lines.push(`medium IN A 10.3.0.${i + 1}`)
  for (let i = 0; i < bigCount; i++) lines.push(`big IN A 10.2.${Math.floor(i / 250)}.${(i % 250) + 1}`)
  for (let i = 0; i < bigTxtCount; i++) lines.push(`bigtxt IN TXT "${String(i).padStart(3, "0")}${"t".repeat(197)}"`)
  return `${lines.join("\n")}\n`
}

/** The reverse zone `127.in-addr.arpa` (PTR for 127.0.0.2: 127.0.0.1 is answered from /etc/hosts by Node). */
export const reverseZone = (): string =>
  [
    "$ORIGIN 127.in-addr.arpa.",
    "$TTL 300",
    "@ IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 60",
    "@ IN NS ns1.example.test.",
    "2.0.0 IN PTR ns2.example.test.",
    ""
  ].join("\n")

const knotConfig = (directory: string, port: number): string => `server:
    rundir: "${directory}/knot"
    listen: [ 127.0.0.1@${port}, ::1@${port} ]
    udp-max-payload: 4096
log:
  - target: stderr
    any: warning
database:
    storage: "${directory}/knot"
template:
  - id: default
    storage: "${directory}"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: example.test
    file: "example.test.zone"
  - domain: 127.in-addr.arpa
    file: "127.in-addr.arpa.zone"
`

const tryBind = <A>(bind: (onDone: (error: Error | undefined, value?: A) => void) => void) =>
  new Promise<A | undefined>((resolve) => bind((error, value) => resolve(error === undefined ? value : undefined)))

/** A port free for TCP and UDP on 127.0.0.1 and ::1 at the time of the check. */
const freePort = Effect.tryPromise({
  try: async () => {
    for (let attempt = 0; attempt < 50; attempt++) {
      const server = Net.createServer()
      const port = await tryBind<number>((done) => {
        server.once("error", (error) => done(error))
        server.listen({ host: "127.0.0.1", port: 0 }, () => {
          const address = server.address()
          done(undefined, typeof address === "object" && address !== null ? address.port : 0)
        })
      })
      const closers: Array<() => Promise<void>> = [() => new Promise((resolve) => server.close(() => resolve()))]
      let free = port !== undefined && port > 0
      if (free && port !== undefined) {
        const tcp6 = Net.createServer()
        const ok6 = await tryBind<boolean>((done) => {
          tcp6.once("error", (error) => done(error))
          tcp6.listen({ host: "::1", port, ipv6Only: true }, () => done(undefined, true))
        })
        closers.push(() => new Promise((resolve) => tcp6.close(() => resolve())))
        free = ok6 === true
        for (const [type, host] of [
          ["udp4", "127.0.0.1"],
          ["udp6", "::1"]
        ] as const) {
          if (!free) break
          const socket = Dgram.createSocket({ type, ipv6Only: type === "udp6" })
          const bound = await tryBind<boolean>((done) => {
            socket.once("error", (error) => done(error))
            socket.bind(port, host, () => done(undefined, true))
          })
          closers.push(() => new Promise((resolve) => socket.close(() => resolve())))
          free = bound === true
        }
      }
      for (const close of closers) await close().catch(() => undefined)
      if (free && port !== undefined) return port
    }
    throw new Error("no port free for both UDP and TCP")
  },
  catch: (cause) => new KnotError({ detail: "could not find a free port", cause })
})

/** A query for `www.example.test` A, with id 0x4242. */
const probe = Uint8Array.from([
  0x42, 0x42, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x77, 0x77, 0x77, 0x07, 0x65, 0x78,
  0x61, 0x6d, 0x70, 0x6c, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x01, 0x00, 0x01
])

/** One probe: resolves with true when knot answers within 200 ms. */
const probeOnce = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = Dgram.createSocket("udp4")
    let done = false
    const finish = (answered: boolean) => {
      if (done) return
      done = true
      socket.close()
      resume(Effect.succeed(answered))
    }
    socket.on("message", (message) => finish(message[0] === 0x42 && message[1] === 0x42))
    socket.on("error", () => finish(false))
    socket.send(probe, port, "127.0.0.1")
    return Effect.sync(() => finish(false))
  }).pipe(Effect.timeoutOrElse({ duration: "200 millis", orElse: () => Effect.succeed(false) }))

const waitExit = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
  })

const startOnce = (directory: string) =>
  Effect.gen(function* () {
    const port = yield* freePort
    yield* Effect.tryPromise({
      try: () => writeFile(join(directory, "knot.conf"), knotConfig(directory, port)),
      catch: (cause) => new KnotError({ detail: "could not write knot.conf", cause })
    })
    const stderr: Array<string> = []
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = spawn("knotd", ["-c", join(directory, "knot.conf")], { stdio: ["ignore", "ignore", "pipe"] })
        child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk.toString()))
        child.on("error", (error) => stderr.push(String(error)))
        return child
      }),
      (child) =>
        Effect.gen(function* () {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
          yield* waitExit(child)
        })
    )
    const exited = () => child.exitCode !== null || child.signalCode !== null
    yield* probeOnce(port).pipe(
      Effect.flatMap((answered) =>
        answered
          ? Effect.void
          : exited()
            ? Effect.fail(new KnotError({ detail: `knotd exited: ${stderr.join("")}` }))
            : Effect.fail(new KnotError({ detail: "knotd not answering yet" }))
      ),
      Effect.retry({
        schedule: Schedule.spaced("20 millis"),
        times: 100,
        while: () => !exited()
      })
    )
    return port
  })

/**
 * Starts knot with the test zones; stopped when the scope closes.
 */
export const make: Effect.Effect<KnotServer, KnotError, Scope.Scope> = Effect.gen(function* () {
  const directory = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: () => mkdtemp(join(tmpdir(), "diesel-knot-")),
      catch: (cause) => new KnotError({ detail: "could not create a temporary directory", cause })
    }),
    (directory) => Effect.promise(() => rm(directory, { recursive: true, force: true }))
  )
  yield* Effect.tryPromise({
    try: async () => {
      await mkdir(join(directory, "knot"))
      await writeFile(join(directory, "example.test.zone"), exampleZone())
      await writeFile(join(directory, "127.in-addr.arpa.zone"), reverseZone())
    },
    catch: (cause) => new KnotError({ detail: "could not write the zones", cause })
  })
  // The port may be taken between the check and knot's bind: start again, each attempt in its own scope.
  const outer = yield* Effect.scope
  const port = yield* Effect.gen(function* () {
    const attempt = yield* Scope.fork(outer)
    return yield* startOnce(directory).pipe(
      Scope.provide(attempt),
      Effect.onError((cause) => Scope.close(attempt, Exit.failCause(cause)))
    )
  }).pipe(Effect.retry({ times: 3 }))
  return { host: "127.0.0.1", port, address: `127.0.0.1:${port}`, directory }
})

/**
 * The knot server as a service, for `layer(...)` in tests.
 */
export class Knot extends Context.Service<Knot, KnotServer>()("test/KnotServer") {}

/** Starts one knot for the layer's lifetime. */
export const layer: Layer.Layer<Knot, KnotError> = Layer.effect(Knot, make)
