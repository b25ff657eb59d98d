import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Resolver } from "@diesel/clients/dns"
import { expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { bigCount, main, serve } from "./dns-authority.js"

/** knot's `kdig` or bind's `dig`, whichever is on PATH: the test fails (it does not skip) without either. */
const digCommand = (): string => {
  for (const command of ["kdig", "dig"]) {
    for (const dir of (process.env.PATH ?? "").split(Path.delimiter)) {
      if (dir !== "" && Fs.existsSync(Path.join(dir, command))) return command
    }
  }
  throw new Error("neither kdig (knot-dnsutils) nor dig (bind9-dnsutils) is installed")
}

/** A 2 s timeout and no retry, in the spelling of each tool. */
const digOptions = (): ReadonlyArray<string> =>
  digCommand() === "kdig" ? ["+timeout=2", "+retry=0"] : ["+time=2", "+tries=1"]

const dig = (port: number, ...args: ReadonlyArray<string>) =>
  Effect.callback<string, Error>((resume) => {
    const child = ChildProcess.execFile(
      digCommand(),
      ["@127.0.0.1", "-p", String(port), ...digOptions(), ...args],
      { timeout: 10_000 },
      (error, stdout) => resume(error === null ? Effect.succeed(stdout) : Effect.fail(error))
    )
    return Effect.sync(() => child.kill())
  })

const lines = (text: string) =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")

it.live("dig gets the zone's answers over UDP and TCP: addresses, CNAME, wildcard, NXDOMAIN, truncation then TCP", () =>
  Effect.gen(function* () {
    const server = yield* serve({})
    const port = server.port
    expect(lines(yield* dig(port, "www.diesel.test", "A", "+short")).sort()).toEqual(["192.0.2.10", "192.0.2.11"])
    expect(lines(yield* dig(port, "www.diesel.test", "AAAA", "+short", "+tcp"))).toEqual(["2001:db8::10"])
    expect(lines(yield* dig(port, "docs.diesel.test", "A", "+short"))).toEqual([
      "www.diesel.test.",
      ...["192.0.2.10", "192.0.2.11"]
    ])
    expect(lines(yield* dig(port, "alice.users.diesel.test", "A", "+short"))).toEqual(["192.0.2.99"])
    expect(yield* dig(port, "nosuch.diesel.test", "A")).toMatch(/status: NXDOMAIN/)
    expect(yield* dig(port, "www.example.com", "A")).toMatch(/status: REFUSED/)
    const tcpBefore = server.counters.tcpQueries
    // too big for UDP: a truncated answer, and dig asks again over TCP
    expect(lines(yield* dig(port, "big.diesel.test", "A", "+short"))).toHaveLength(bigCount)
    expect(server.counters.tcpQueries).toBe(tcpBefore + 1)
  }).pipe(Effect.scoped)
)

it.live("diesel's own Resolver gets the same answers, falling back to TCP for the big one", () =>
  Effect.gen(function* () {
    const server = yield* serve({})
    const answers = yield* Effect.gen(function* () {
      const www = yield* Resolver.lookup("www.diesel.test")
      const docs = yield* Resolver.resolve("docs.diesel.test", "A")
      const mx = yield* Resolver.resolve("diesel.test", "MX")
      const big = yield* (yield* Resolver.Resolver).query("big.diesel.test", "A")
      const nosuch = yield* Effect.flip(Resolver.lookup("nosuch.diesel.test", { family: "IPv4" }))
      return { www, docs, mx, big, nosuch }
    }).pipe(
      Effect.provide(Resolver.layer({ nameservers: [`127.0.0.1:${server.port}`], timeout: "2 seconds", cache: false }))
    )
    expect([...answers.www].sort()).toEqual(["192.0.2.10", "192.0.2.11", "2001:db8::10"])
    expect(answers.docs.cnames).toEqual(["www.diesel.test"])
    expect(answers.docs.canonicalName).toBe("www.diesel.test")
    expect(answers.mx.records.map((record) => record.data.exchange)).toEqual(["mail.diesel.test"])
    expect(answers.big.tcp).toBe(true)
    expect(answers.big.message.answers).toHaveLength(bigCount)
    expect(answers.nosuch._tag).toBe("NxDomain")
  }).pipe(Effect.scoped)
)

it.live("the demo serves until it has answered, then stops by itself", () =>
  Effect.gen(function* () {
    const listening = yield* Deferred.make<number>()
    const counters = yield* Effect.forkChild(
      main({ port: 0, seconds: 20, onListening: (port) => Deferred.succeed(listening, port) })
    )
    const port = yield* Deferred.await(listening)
    expect(lines(yield* dig(port, "mail.diesel.test", "A", "+short"))).toEqual(["192.0.2.25"])
    const answered = yield* Fiber.join(counters)
    expect(answered?.udpQueries).toBe(1)
  })
)

it.live("runs alone: prints the port and a dig line, answers, exits 0", () =>
  Effect.callback<{ readonly code: number | null; readonly output: string; readonly answer: string }, Error>(
    (resume) => {
      const root = fileURLToPath(new URL("..", import.meta.url))
      const child = ChildProcess.spawn(
        process.execPath,
        ["--conditions=@diesel/source", "--import", "tsx", "examples/dns-authority.ts"],
        { cwd: root, stdio: ["ignore", "pipe", "inherit"] }
      )
      let output = ""
      let answer = ""
      let asked = false
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString()
        const port = /port (\d+)/.exec(output)?.[1]
        if (port !== undefined && !asked && output.includes("kdig @127.0.0.1")) {
          asked = true
          ChildProcess.execFile(
            digCommand(),
            ["@127.0.0.1", "-p", port, ...digOptions(), "+short", "www.diesel.test"],
            (_error, stdout) => {
              answer = stdout
            }
          )
        }
      })
      child.on("exit", (code) => resume(Effect.succeed({ code, output, answer })))
      child.on("error", (error) => resume(Effect.fail(error)))
      return Effect.sync(() => child.kill())
    }
  ).pipe(
    Effect.timeout("30 seconds"),
    Effect.map((result) => {
      expect(result.code).toBe(0)
      expect(result.output).toMatch(/kdig @127\.0\.0\.1 -p \d+ www\.diesel\.test/)
      expect(lines(result.answer).sort()).toEqual(["192.0.2.10", "192.0.2.11"])
      return expect(result.output).toMatch(/answered 1 UDP and 0 TCP queries/)
    })
  )
)
