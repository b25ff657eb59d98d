/**
 * permessage-deflate (RFC 7692): offer/response negotiation and the per-connection compressor and
 * decompressor, on node:zlib's raw deflate streams.
 *
 * One zlib stream per direction lives as long as the connection (context takeover); when the negotiated
 * parameters forbid takeover for a direction, its stream is `reset()` after every message. Inflated output
 * is counted as it is produced and the message is abandoned past the limit, so a small compressed frame
 * cannot make the connection allocate without bound.
 *
 * @internal
 */
import * as zlib from "node:zlib"
import type * as WebSocket from "../WebSocket.js"

/** Negotiated parameters, from this endpoint's point of view. @internal */
export interface Params {
  /** This endpoint resets its compressor after every message. */
  readonly localNoContextTakeover: boolean
  /** The peer resets its compressor after every message (ours may then reset too). */
  readonly remoteNoContextTakeover: boolean
  /** LZ77 window of this endpoint's compressor (9..15). */
  readonly localMaxWindowBits: number
}

/** Options a user gives for permessage-deflate: the public `WebSocket.DeflateOptions`. @internal */
export type Options = WebSocket.DeflateOptions

type Offer = Map<string, string | true>

/** Parse a Sec-WebSocket-Extensions value into its extensions with parameters (RFC 6455 9.1). */
export const parseExtensions = (
  value: string
): Array<{ readonly name: string; readonly params: Offer }> | undefined => {
  const out: Array<{ readonly name: string; readonly params: Offer }> = []
  for (const part of value.split(",")) {
    const items = part.split(";").map((item) => item.trim())
    const name = items[0]
    if (name === undefined || name === "") {
      if (items.length === 1) continue
      return undefined
    }
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) return undefined
    const params: Offer = new Map()
    for (const item of items.slice(1)) {
      const eq = item.indexOf("=")
      const key = (eq < 0 ? item : item.slice(0, eq)).trim().toLowerCase()
      if (key === "" || params.has(key)) return undefined
      if (eq < 0) params.set(key, true)
      else {
        let v = item.slice(eq + 1).trim()
        if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1)
        params.set(key, v)
      }
    }
    out.push({ name: name.toLowerCase(), params })
  }
  return out
}

const windowBits = (value: string | true | undefined): number | undefined | "invalid" => {
  if (value === undefined) return undefined
  if (value === true || !/^[0-9]{1,2}$/.test(value)) return "invalid"
  const n = Number(value)
  // 8 is valid in RFC 7692 but zlib's raw deflate cannot produce an 8-bit window: it silently uses 9
  return n >= 9 && n <= 15 ? n : "invalid"
}

const KNOWN = new Set([
  "server_no_context_takeover",
  "client_no_context_takeover",
  "server_max_window_bits",
  "client_max_window_bits"
])

/** The offer a client sends. @internal */
export const clientOffer = (options: Options): string => {
  const parts = ["permessage-deflate"]
  if (options.serverNoContextTakeover === true) parts.push("server_no_context_takeover")
  if (options.clientNoContextTakeover === true) parts.push("client_no_context_takeover")
  if (options.serverMaxWindowBits !== undefined) parts.push(`server_max_window_bits=${options.serverMaxWindowBits}`)
  parts.push(
    options.clientMaxWindowBits === undefined
      ? "client_max_window_bits"
      : `client_max_window_bits=${options.clientMaxWindowBits}`
  )
  return parts.join("; ")
}

/**
 * A server's answer to the client's offers: the first acceptable permessage-deflate offer wins. Returns
 * the response header value and the parameters, or `undefined` to decline.
 *
 * @internal
 */
export const accept = (
  header: string,
  options: Options
): { readonly response: string; readonly params: Params } | undefined => {
  const extensions = parseExtensions(header)
  if (extensions === undefined) return undefined
  for (const { name, params } of extensions) {
    if (name !== "permessage-deflate") continue
    if ([...params.keys()].some((key) => !KNOWN.has(key))) continue
    const serverBits = windowBits(params.get("server_max_window_bits"))
    const clientParam = params.get("client_max_window_bits")
    const clientBits = clientParam === true ? undefined : windowBits(clientParam)
    if (serverBits === "invalid" || clientBits === "invalid") continue
    if (params.get("server_no_context_takeover") === "" || params.get("client_no_context_takeover") === "") continue
    const serverNoTakeover = params.has("server_no_context_takeover") || options.serverNoContextTakeover === true
    const clientNoTakeover = params.has("client_no_context_takeover") || options.clientNoContextTakeover === true
    // our window: the smaller of what the client allows and what we are configured with
    const localBits = Math.min(serverBits ?? 15, options.serverMaxWindowBits ?? 15)
    const parts = ["permessage-deflate"]
    if (serverNoTakeover) parts.push("server_no_context_takeover")
    if (clientNoTakeover) parts.push("client_no_context_takeover")
    if (serverBits !== undefined || localBits < 15) parts.push(`server_max_window_bits=${localBits}`)
    // ask the client for a smaller window only if it said it supports the parameter
    if (options.clientMaxWindowBits !== undefined && params.has("client_max_window_bits")) {
      parts.push(`client_max_window_bits=${Math.min(options.clientMaxWindowBits, clientBits ?? 15)}`)
    } else if (clientBits !== undefined) {
      parts.push(`client_max_window_bits=${clientBits}`)
    }
    return {
      response: parts.join("; "),
      params: {
        localNoContextTakeover: serverNoTakeover,
        remoteNoContextTakeover: clientNoTakeover,
        localMaxWindowBits: localBits
      }
    }
  }
  return undefined
}

/**
 * A client's check of the server's response to its offer: the parameters, or a reason to fail the
 * connection (RFC 7692 5: the server may not add what the client did not offer).
 *
 * @internal
 */
export const confirm = (header: string, options: Options): Params | string => {
  const extensions = parseExtensions(header)
  if (extensions === undefined) return `malformed Sec-WebSocket-Extensions: ${header}`
  const [first, ...rest] = extensions
  if (first === undefined) return "empty Sec-WebSocket-Extensions"
  if (rest.length > 0 || first.name !== "permessage-deflate") return `unrequested extension in ${header}`
  const params = first.params
  for (const key of params.keys()) if (!KNOWN.has(key)) return `unknown permessage-deflate parameter ${key}`
  const serverBits = windowBits(params.get("server_max_window_bits"))
  const clientBits = windowBits(params.get("client_max_window_bits"))
  if (serverBits === "invalid" || clientBits === "invalid") return `invalid window bits in ${header}`
  if (options.serverNoContextTakeover === true && !params.has("server_no_context_takeover")) {
    return "the server ignored server_no_context_takeover"
  }
  if (
    options.serverMaxWindowBits !== undefined &&
    (serverBits === undefined || serverBits > options.serverMaxWindowBits)
  ) {
    return "the server ignored server_max_window_bits"
  }
  return {
    localNoContextTakeover: params.has("client_no_context_takeover") || options.clientNoContextTakeover === true,
    remoteNoContextTakeover: params.has("server_no_context_takeover"),
    localMaxWindowBits: Math.min(clientBits ?? 15, options.clientMaxWindowBits ?? 15)
  }
}

const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff])

/** The inflated message went past the limit. @internal */
export class InflateLimit {
  constructor(readonly limit: number) {}
}

/**
 * The compressor and decompressor of one connection. Calls of each are serialized by the caller (one
 * message at a time per direction), which is what keeps the shared LZ77 context consistent.
 *
 * @internal
 */
export class PerMessageDeflate {
  private deflater: zlib.DeflateRaw | undefined
  private inflater: zlib.InflateRaw | undefined
  readonly threshold: number

  constructor(
    readonly params: Params,
    private readonly options: Options
  ) {
    this.threshold = options.threshold ?? 64
  }

  /** Compress one whole message; calls back with the payload (the trailing 00 00 ff ff removed). */
  compress(data: Uint8Array, done: (error: Error | undefined, payload: Uint8Array) => void): void {
    if (this.deflater === undefined) {
      this.deflater = zlib.createDeflateRaw({
        windowBits: this.params.localMaxWindowBits,
        level: this.options.level ?? 1,
        memLevel: 8
      })
    }
    const deflater = this.deflater
    const parts: Array<Buffer> = []
    let size = 0
    const onData = (chunk: Buffer) => {
      parts.push(chunk)
      size += chunk.byteLength
    }
    const onError = (error: Error) => {
      deflater.off("data", onData)
      this.deflater = undefined
      done(error, new Uint8Array(0))
    }
    deflater.on("data", onData)
    deflater.once("error", onError)
    deflater.write(data)
    deflater.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      deflater.off("data", onData)
      deflater.off("error", onError)
      const all = parts.length === 1 && parts[0] !== undefined ? parts[0] : Buffer.concat(parts, size)
      if (this.params.localNoContextTakeover) deflater.reset()
      done(undefined, all.subarray(0, Math.max(0, all.byteLength - 4)))
    })
  }

  /** Decompress one whole message, failing with `InflateLimit` past `maxSize` bytes of output. */
  decompress(data: Uint8Array, maxSize: number, done: (result: Uint8Array | InflateLimit | Error) => void): void {
    if (this.inflater === undefined) this.inflater = zlib.createInflateRaw({ windowBits: 15 })
    const inflater = this.inflater
    const parts: Array<Buffer> = []
    let size = 0
    let finished = false
    const onData = (chunk: Buffer) => {
      if (finished) return
      size += chunk.byteLength
      if (size > maxSize) {
        // stop inflating at once (a zip bomb costs no more CPU than the limit); the stream's context is
        // mid-message, so it is dropped (the connection fails anyway)
        finished = true
        inflater.off("data", onData)
        inflater.off("error", onError)
        inflater.close()
        this.inflater = undefined
        return done(new InflateLimit(maxSize))
      }
      parts.push(chunk)
    }
    const onError = (error: Error) => {
      if (finished) return
      finished = true
      inflater.off("data", onData)
      this.inflater = undefined
      done(error)
    }
    inflater.on("data", onData)
    inflater.once("error", onError)
    inflater.write(data)
    inflater.write(TRAILER)
    inflater.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      if (finished) return
      finished = true
      inflater.off("data", onData)
      inflater.off("error", onError)
      if (this.params.remoteNoContextTakeover) inflater.reset()
      done(parts.length === 1 && parts[0] !== undefined ? parts[0] : Buffer.concat(parts, size))
    })
  }

  close(): void {
    this.deflater?.close()
    this.inflater?.close()
    this.deflater = undefined
    this.inflater = undefined
  }
}
