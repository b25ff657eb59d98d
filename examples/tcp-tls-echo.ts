/**
 * Line echo over TLS. The certificate and key come from the caller (`--cert`, `--key`); without them the
 * demo makes a self-signed one with openssl, and the client trusts exactly that certificate (`ca`):
 * verification and SNI stay on.
 *
 *   pnpm exec tsx --conditions=@diesel/source examples/tcp-tls-echo.ts
 *   pnpm exec tsx --conditions=@diesel/source examples/tcp-tls-echo.ts --cert cert.pem --key key.pem
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Connection, Receive, TCPClient, TCPService } from "@diesel/tcp"
import { NodeRuntime } from "@effect/platform-node"
import * as Effect from "effect/Effect"

const argument = (name: string): string | undefined => {
  const index = process.argv.indexOf(name)
  return index >= 0 ? process.argv[index + 1] : undefined
}

/** A self-signed certificate for localhost, made with openssl in a temporary directory. */
const selfSigned = Effect.acquireUseRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "diesel-tls-echo-"))),
  (dir) =>
    Effect.sync(() => {
      const key = Path.join(dir, "key.pem")
      const cert = Path.join(dir, "cert.pem")
      execFileSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-keyout",
          key,
          "-out",
          cert,
          "-days",
          "1",
          "-subj",
          "/CN=localhost",
          "-addext",
          "subjectAltName=DNS:localhost"
        ],
        { stdio: "ignore" }
      )
      return { key: Fs.readFileSync(key, "utf8"), cert: Fs.readFileSync(cert, "utf8") }
    }),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const loadCertificate = Effect.suspend(() => {
  const cert = argument("--cert")
  const key = argument("--key")
  return cert !== undefined && key !== undefined
    ? Effect.sync(() => ({ cert: Fs.readFileSync(cert, "utf8"), key: Fs.readFileSync(key, "utf8") }))
    : selfSigned
})

const echo = Effect.forever(Effect.flatMap(Receive.untilEol(), Connection.send))

const main = Effect.gen(function* () {
  const certificate = yield* loadCertificate
  const service = yield* TCPService.make({ host: "127.0.0.1", port: 0, tls: certificate, handler: echo })
  // "localhost" is the name in the certificate: it is sent as SNI and verified
  const client = yield* TCPClient.connect({
    host: "localhost",
    family: "ipv4",
    port: service.port,
    tls: { ca: certificate.cert }
  })
  const reply = yield* TCPClient.call(client, Effect.andThen(Connection.send("over tls\r\n"), Receive.untilEol()))
  if (Receive.text(reply) !== "over tls\r\n") return yield* Effect.die(`unexpected ${Receive.text(reply)}`)
  yield* Effect.log("tls echo: ok")
}).pipe(Effect.scoped)

if (import.meta.url === `file://${process.argv[1]}`) NodeRuntime.runMain(main)
