/** A self-signed certificate for localhost and 127.0.0.1, made with openssl at test time. */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

export interface Certificate {
  readonly key: string
  readonly cert: string
}

let cached: Certificate | undefined

export const selfSigned = (): Certificate => {
  if (cached !== undefined) return cached
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "diesel-tcp-tls-"))
  try {
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
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1"
      ],
      { stdio: "ignore" }
    )
    cached = { key: Fs.readFileSync(key, "utf8"), cert: Fs.readFileSync(cert, "utf8") }
    return cached
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}
