/**
 * The opening handshake (RFC 6455 4): the key and its accept value, the head of an HTTP/1.1 upgrade
 * request or response, and the checks each side makes.
 *
 * @internal
 */
import { createHash, randomBytes } from "node:crypto"

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key. @internal */
export const acceptKey = (key: string): string =>
  createHash("sha1")
    .update(key + GUID)
    .digest("base64")

/** A fresh Sec-WebSocket-Key (16 random bytes, base64). @internal */
export const makeKey = (): string => randomBytes(16).toString("base64")

/** A parsed HTTP/1.1 head: the start line's three parts and the headers (names lower-cased). @internal */
export interface Head {
  readonly start: readonly [string, string, string]
  /** Repeated headers are joined with ", " (RFC 9110 5.3). */
  readonly headers: Map<string, string>
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Parse a head (the bytes up to and including the empty line), or say what is wrong with it. @internal */
export const parseHead = (bytes: Uint8Array): Head | string => {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1")
  const lines = text.split("\r\n")
  const startLine = lines[0] ?? ""
  const first = startLine.indexOf(" ")
  const second = startLine.indexOf(" ", first + 1)
  if (first <= 0 || second <= first) return `malformed start line: ${JSON.stringify(startLine.slice(0, 100))}`
  const start: [string, string, string] = [
    startLine.slice(0, first),
    startLine.slice(first + 1, second),
    startLine.slice(second + 1)
  ]
  const headers = new Map<string, string>()
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? ""
    if (line === "") break
    const colon = line.indexOf(":")
    const name = colon > 0 ? line.slice(0, colon) : ""
    // a bare CR or LF, obs-fold, or a name that is not a token: refuse, as node:http does
    if (!TOKEN.test(name) || /[\r\n\0]/.test(line))
      return `malformed header line: ${JSON.stringify(line.slice(0, 100))}`
    const value = line.slice(colon + 1).trim()
    const key = name.toLowerCase()
    const previous = headers.get(key)
    headers.set(key, previous === undefined ? value : `${previous}, ${value}`)
  }
  return { start, headers }
}

/** The comma-separated tokens of a header value, lower-cased. @internal */
export const tokens = (value: string | undefined): Array<string> =>
  value === undefined
    ? []
    : value
        .split(",")
        .map((token) => token.trim().toLowerCase())
        .filter((token) => token !== "")

/** Subprotocol names as written (case-sensitive, RFC 6455 4.1). @internal */
export const protocols = (value: string | undefined): Array<string> =>
  value === undefined
    ? []
    : value
        .split(",")
        .map((token) => token.trim())
        .filter((token) => token !== "")

/** A request head for a client handshake. @internal */
export const clientRequest = (options: {
  readonly path: string
  readonly host: string
  readonly key: string
  readonly protocols: ReadonlyArray<string>
  readonly extensions: string | undefined
  readonly origin: string | undefined
  readonly headers: Readonly<Record<string, string>>
}): string => {
  const lines = [
    `GET ${options.path} HTTP/1.1`,
    `Host: ${options.host}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${options.key}`,
    "Sec-WebSocket-Version: 13"
  ]
  if (options.protocols.length > 0) lines.push(`Sec-WebSocket-Protocol: ${options.protocols.join(", ")}`)
  if (options.extensions !== undefined) lines.push(`Sec-WebSocket-Extensions: ${options.extensions}`)
  if (options.origin !== undefined) lines.push(`Origin: ${options.origin}`)
  for (const [name, value] of Object.entries(options.headers)) {
    if (!TOKEN.test(name) || /[\r\n\0]/.test(value)) throw new TypeError(`invalid header ${name}`)
    lines.push(`${name}: ${value}`)
  }
  return `${lines.join("\r\n")}\r\n\r\n`
}

/** Is `key` a valid Sec-WebSocket-Key (base64 of 16 bytes)? @internal */
export const isValidKey = (key: string | undefined): key is string =>
  key !== undefined && /^[A-Za-z0-9+/]{22}==$/.test(key)

/** A plain HTTP response closing a refused handshake. @internal */
export const refusal = (status: number, reason: string, extra: ReadonlyArray<string> = []): string => {
  const body = `${reason}\n`
  return [
    `HTTP/1.1 ${status} ${reason}`,
    "Connection: close",
    "Content-Type: text/plain; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...extra,
    "",
    body
  ].join("\r\n")
}
