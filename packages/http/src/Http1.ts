/**
 * The HTTP/1.1 message heads (RFC 9112), parsed from bytes as llhttp (node:http's parser) parses them in
 * its strict mode, shared by the server and the client: request heads, response heads, and the framing
 * they imply (Content-Length, chunked, keep-alive, Expect, Upgrade).
 *
 * The parsers are byte-level scans over one contiguous buffer with lookup tables (no regular expression,
 * no string building per byte); strings are cut once per token. They are incremental in the way a
 * connection needs: call again with more bytes until they stop answering `undefined`; any split of the
 * bytes gives the same result.
 *
 * @since 0.1.0
 */
import { HttpParseError } from "./HttpParseError.js"
import { asBuffer, COLON, CR, HTAB, LF, latin1, SP, TARGET, TOKEN, VALUE } from "./internal/chars.js"

/**
 * Limits on a head. Defaults follow node:http: 16 KiB of head (`--max-http-header-size`), 2000 headers
 * (`maxHeadersCount`, which node truncates; here it is an error).
 *
 * @since 0.1.0
 * @category models
 */
export interface Limits {
  readonly maxHeadSize?: number | undefined
  readonly maxHeaders?: number | undefined
}

/**
 * Default maximum head size (bytes, request or status line included): node's 16 KiB.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MAX_HEAD_SIZE = 16 * 1024

/**
 * Default maximum number of header fields: node's `maxHeadersCount`.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MAX_HEADERS = 2000

/**
 * What both kinds of head carry.
 *
 * @since 0.1.0
 * @category models
 */
export interface Head {
  /** `1` for HTTP/1.1, `0` for HTTP/1.0. */
  readonly minor: 0 | 1
  /** Header fields as a flat list: lower-case name, value, name, value... in arrival order. */
  readonly headers: ReadonlyArray<string>
  /** Bytes of the head, the empty line included: where the body starts. */
  readonly size: number
  /** The body's length from Content-Length, or `undefined`. */
  readonly contentLength: number | undefined
  /** The body is chunked (Transfer-Encoding ends in `chunked`). */
  readonly chunked: boolean
  /** Transfer-Encoding is present but does not end in `chunked` (a response body then runs to close). */
  readonly otherTransferEncoding: boolean
  /** The connection stays open after this message (version default, overridden by Connection). */
  readonly keepAlive: boolean
  /** `Connection: upgrade` with an `Upgrade` header. */
  readonly upgrade: boolean
}

/**
 * A request head.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestHead extends Head {
  readonly method: string
  /** The request target as sent (origin-form `/path?query`, absolute-form, authority-form or `*`). */
  readonly target: string
  /** `Expect: 100-continue`. */
  readonly expectContinue: boolean
}

/**
 * A response head.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResponseHead extends Head {
  readonly status: number
  readonly reason: string
}

const fail = (reason: HttpParseError["reason"], offset: number, detail?: string) =>
  new HttpParseError(detail === undefined ? { reason, offset } : { reason, offset, detail })

/**
 * Where the head in `bytes` ends (just past the empty line), `-1` when it is not complete yet, or an error
 * for a line feed without its carriage return (llhttp strict mode rejects it). `from` lets a caller that
 * keeps state skip bytes already scanned.
 *
 * @since 0.1.0
 * @category parsing
 */
export const findHeadEnd = (bytes: Uint8Array, from = 0): number | HttpParseError => {
  const buf = asBuffer(bytes)
  let at = from > 3 ? from - 3 : 0
  while (true) {
    const lf = buf.indexOf(LF, at)
    if (lf < 0) return -1
    if (lf === 0 || buf[lf - 1] !== CR) return fail("BareLF", lf)
    // CRLF at lf-1; the head ends when the line it closes is empty, or (at the very start) a leading CRLF
    if (lf >= 3 && buf[lf - 2] === LF && buf[lf - 3] === CR) return lf + 1
    at = lf + 1
  }
}

interface Framing {
  contentLength: number | undefined
  chunked: boolean
  otherTransferEncoding: boolean
  close: boolean
  keepAliveToken: boolean
  upgradeToken: boolean
  hasUpgradeHeader: boolean
  expectContinue: boolean
  hasTransferEncoding: boolean
}

// Lower-case of a latin1 string only when it has upper-case ASCII (names are usually lower already on
// HTTP/2-era clients, and title-case from curl/browsers: one pass either way).
const lowerName = (buf: Buffer, start: number, end: number, hasUpper: boolean): string => {
  const name = latin1(buf, start, end)
  return hasUpper ? name.toLowerCase() : name
}

const isTokenIn = (value: string, token: string): boolean => {
  // comma-separated list, case-insensitive, OWS around elements
  const lower = value.toLowerCase()
  let start = 0
  while (start <= lower.length) {
    let comma = lower.indexOf(",", start)
    if (comma < 0) comma = lower.length
    if (lower.slice(start, comma).trim() === token) return true
    start = comma + 1
  }
  return false
}

const parseContentLength = (value: string): number => {
  if (value.length === 0 || value.length > 15) return -1
  let n = 0
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i) - 0x30
    if (c < 0 || c > 9) return -1
    n = n * 10 + c
  }
  return n
}

const applyFraming = (framing: Framing, name: string, value: string, offset: number): HttpParseError | undefined => {
  switch (name) {
    case "content-length": {
      if (framing.contentLength !== undefined) return fail("DuplicateContentLength", offset)
      const n = parseContentLength(value)
      if (n < 0) return fail("InvalidContentLength", offset, value)
      framing.contentLength = n
      return undefined
    }
    case "transfer-encoding": {
      framing.hasTransferEncoding = true
      // codings accumulate across fields; chunked must be the last one and appear once
      const codings = value.toLowerCase().split(",")
      for (let i = 0; i < codings.length; i++) {
        const coding = (codings[i] ?? "").trim()
        if (coding.length === 0) continue
        if (framing.chunked) return fail("ChunkedNotLast", offset)
        if (coding === "chunked") {
          framing.chunked = true
          framing.otherTransferEncoding = false
        } else {
          framing.otherTransferEncoding = true
        }
      }
      return undefined
    }
    case "connection":
      if (isTokenIn(value, "close")) framing.close = true
      if (isTokenIn(value, "keep-alive")) framing.keepAliveToken = true
      if (isTokenIn(value, "upgrade")) framing.upgradeToken = true
      return undefined
    case "upgrade":
      framing.hasUpgradeHeader = true
      return undefined
    case "expect":
      if (value.toLowerCase() === "100-continue") framing.expectContinue = true
      return undefined
    default:
      return undefined
  }
}

/**
 * Parse the header lines of `buf[pos, end)` (`end` is just past the empty line) into `headers`.
 *
 * @since 0.1.0
 * @category parsing
 */
const parseFields = (
  buf: Buffer,
  pos: number,
  end: number,
  maxHeaders: number,
  headers: Array<string>,
  framing: Framing
): HttpParseError | undefined => {
  const last = end - 2 // the CR of the empty line
  while (pos < last) {
    const lineStart = pos
    const first = buf[pos] ?? 0
    if (first === SP || first === HTAB) return fail("ObsFold", pos)
    let hasUpper = false
    while (pos < last) {
      const c = buf[pos] ?? 0
      if (TOKEN[c] !== 1) break
      if (c >= 0x41 && c <= 0x5a) hasUpper = true
      pos++
    }
    if (pos === lineStart || buf[pos] !== COLON) return fail("InvalidHeaderName", pos)
    const nameEnd = pos
    pos++
    while (buf[pos] === SP || buf[pos] === HTAB) pos++
    const valueStart = pos
    let valueEnd = pos
    while (true) {
      const c = buf[pos] ?? 0
      if (c === CR) break
      if (VALUE[c] !== 1) return fail("InvalidHeaderValue", pos)
      pos++
      if (c !== SP && c !== HTAB) valueEnd = pos
    }
    // findHeadEnd guarantees every LF has its CR; a CR must be followed by LF
    if (buf[pos + 1] !== LF) return fail("BareCR", pos)
    if (headers.length >= maxHeaders * 2) return fail("TooManyHeaders", lineStart)
    const name = lowerName(buf, lineStart, nameEnd, hasUpper)
    const value = latin1(buf, valueStart, valueEnd)
    headers.push(name, value)
    const error = applyFraming(framing, name, value, lineStart)
    if (error !== undefined) return error
    pos += 2
    // the line after a header line starting with SP/HTAB is obs-fold: checked at the loop head
  }
  return undefined
}

const newFraming = (): Framing => ({
  contentLength: undefined,
  chunked: false,
  otherTransferEncoding: false,
  close: false,
  keepAliveToken: false,
  upgradeToken: false,
  hasUpgradeHeader: false,
  expectContinue: false,
  hasTransferEncoding: false
})

// "HTTP/1.x" at pos; returns the minor version or -1
const parseVersion = (buf: Buffer, pos: number): number => {
  if (
    buf[pos] !== 0x48 ||
    buf[pos + 1] !== 0x54 ||
    buf[pos + 2] !== 0x54 ||
    buf[pos + 3] !== 0x50 ||
    buf[pos + 4] !== 0x2f ||
    buf[pos + 5] !== 0x31 ||
    buf[pos + 6] !== 0x2e
  )
    return -1
  const minor = buf[pos + 7]
  return minor === 0x30 ? 0 : minor === 0x31 ? 1 : -1
}

const checkBareCR = (buf: Buffer, start: number, end: number): HttpParseError | undefined => {
  const cr = buf.indexOf(CR, start)
  return cr >= 0 && cr < end ? fail("BareCR", cr) : undefined
}

const options = (limits: Limits | undefined) => ({
  maxHeadSize: limits?.maxHeadSize ?? DEFAULT_MAX_HEAD_SIZE,
  maxHeaders: limits?.maxHeaders ?? DEFAULT_MAX_HEADERS
})

const locateHead = (buf: Buffer, maxHeadSize: number, from: number): number | HttpParseError | undefined => {
  const end = findHeadEnd(buf, from)
  if (end instanceof HttpParseError) return end.offset >= maxHeadSize ? fail("HeadTooLarge", maxHeadSize) : end
  if (end < 0) return buf.byteLength >= maxHeadSize ? fail("HeadTooLarge", maxHeadSize) : undefined
  return end > maxHeadSize ? fail("HeadTooLarge", maxHeadSize) : end
}

/**
 * Parse a request head from the start of `bytes`: the head, `undefined` when more bytes are needed, or the
 * error to answer with. Leading empty lines are skipped, as RFC 9112 section 2.2 allows (they count in
 * `size`).
 *
 * @example
 * ```ts
 * import { Http1 } from "@diesel/http"
 *
 * const head = Http1.parseRequestHead(new TextEncoder().encode("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n"))
 * // head.method === "GET", head.target === "/a?b=1", head.headers === ["host", "x"], head.keepAlive === true
 * ```
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseRequestHead = (
  bytes: Uint8Array,
  limits?: Limits,
  from = 0
): RequestHead | HttpParseError | undefined => {
  const buf = asBuffer(bytes)
  const { maxHeadSize, maxHeaders } = options(limits)
  let pos = 0
  while (buf[pos] === CR && buf[pos + 1] === LF) pos += 2
  if (pos >= buf.byteLength) return undefined
  const located = locateHead(buf.subarray(pos), maxHeadSize, from > pos ? from - pos : 0)
  if (located === undefined || located instanceof HttpParseError) return located
  const end = pos + located
  // request line: method SP target SP HTTP/1.x CRLF
  const methodStart = pos
  while (TOKEN[buf[pos] ?? 0] === 1) pos++
  if (pos === methodStart || buf[pos] !== SP) return fail("InvalidMethod", pos)
  const method = latin1(buf, methodStart, pos)
  pos++
  const targetStart = pos
  while (TARGET[buf[pos] ?? 0] === 1) pos++
  if (pos === targetStart || buf[pos] !== SP) return fail("InvalidTarget", pos)
  const target = latin1(buf, targetStart, pos)
  pos++
  const minor = parseVersion(buf, pos)
  if (minor < 0) return fail("InvalidVersion", pos)
  pos += 8
  if (buf[pos] !== CR) return checkBareCR(buf, pos, end) ?? fail("InvalidVersion", pos)
  if (buf[pos + 1] !== LF) return fail("BareCR", pos)
  pos += 2
  const headers: Array<string> = []
  const framing = newFraming()
  const error = parseFields(buf, pos, end, maxHeaders, headers, framing)
  if (error !== undefined) return error
  if (framing.hasTransferEncoding && framing.contentLength !== undefined)
    return fail("ContentLengthWithTransferEncoding", methodStart)
  // a request body must be delimited: a coding other than chunked last cannot be (RFC 9112 6.3)
  if (framing.otherTransferEncoding) return fail("UnsupportedTransferEncoding", methodStart)
  return {
    method,
    target,
    minor: minor === 0 ? 0 : 1,
    headers,
    size: end,
    contentLength: framing.contentLength,
    chunked: framing.chunked,
    otherTransferEncoding: false,
    keepAlive: minor === 1 ? !framing.close : framing.keepAliveToken && !framing.close,
    upgrade: framing.upgradeToken && framing.hasUpgradeHeader,
    expectContinue: framing.expectContinue
  }
}

/**
 * Parse a response head from the start of `bytes`: the head, `undefined` when more bytes are needed, or an
 * error. Whether a body follows also depends on the request (HEAD) and the status (1xx, 204, 304): see
 * `responseHasBody`.
 *
 * @example
 * ```ts
 * import { Http1 } from "@diesel/http"
 *
 * const head = Http1.parseResponseHead(new TextEncoder().encode("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
 * // head.status === 404, head.reason === "Not Found", head.contentLength === 0
 * ```
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseResponseHead = (
  bytes: Uint8Array,
  limits?: Limits,
  from = 0
): ResponseHead | HttpParseError | undefined => {
  const buf = asBuffer(bytes)
  const { maxHeadSize, maxHeaders } = options(limits)
  const located = locateHead(buf, maxHeadSize, from)
  if (located === undefined || located instanceof HttpParseError) return located
  const end = located
  let pos = 0
  const minor = parseVersion(buf, pos)
  if (minor < 0) return fail("InvalidVersion", pos)
  pos += 8
  if (buf[pos] !== SP) return fail("InvalidStatus", pos)
  pos++
  const d0 = (buf[pos] ?? 0) - 0x30
  const d1 = (buf[pos + 1] ?? 0) - 0x30
  const d2 = (buf[pos + 2] ?? 0) - 0x30
  if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return fail("InvalidStatus", pos)
  const status = d0 * 100 + d1 * 10 + d2
  pos += 3
  let reason = ""
  if (buf[pos] === SP) {
    pos++
    const reasonStart = pos
    while (true) {
      const c = buf[pos] ?? 0
      if (c === CR) break
      if (VALUE[c] !== 1) return fail("InvalidStatus", pos)
      pos++
    }
    reason = latin1(buf, reasonStart, pos)
  }
  if (buf[pos] !== CR) return fail("InvalidStatus", pos)
  if (buf[pos + 1] !== LF) return fail("BareCR", pos)
  pos += 2
  const headers: Array<string> = []
  const framing = newFraming()
  const error = parseFields(buf, pos, end, maxHeaders, headers, framing)
  if (error !== undefined) return error
  if (framing.hasTransferEncoding && framing.contentLength !== undefined)
    return fail("ContentLengthWithTransferEncoding", 0)
  return {
    status,
    reason,
    minor: minor === 0 ? 0 : 1,
    headers,
    size: end,
    contentLength: framing.contentLength,
    chunked: framing.chunked,
    otherTransferEncoding: framing.otherTransferEncoding,
    keepAlive:
      !framing.otherTransferEncoding && (minor === 1 ? !framing.close : framing.keepAliveToken && !framing.close),
    upgrade: status === 101 || (framing.upgradeToken && framing.hasUpgradeHeader)
  }
}

/**
 * Whether a response to `method` with `status` has a body (RFC 9112 6.3: not for HEAD, 1xx, 204, 304).
 *
 * @since 0.1.0
 * @category framing
 */
export const responseHasBody = (method: string, status: number): boolean =>
  method !== "HEAD" && status >= 200 && status !== 204 && status !== 304

/**
 * The value of the first header `name` (lower case) in a head's flat list, or `undefined`.
 *
 * @since 0.1.0
 * @category headers
 */
export const header = (headers: ReadonlyArray<string>, name: string): string | undefined => {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1]
  return undefined
}

/**
 * Parse a trailer section (the header lines after a last chunk, ending in an empty line, which
 * `bytes` must include) into a flat list of lower-case name, value.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseTrailers = (bytes: Uint8Array, limits?: Limits): ReadonlyArray<string> | HttpParseError => {
  const buf = asBuffer(bytes)
  const end = findHeadEnd(buf)
  if (end instanceof HttpParseError) return end
  const headers: Array<string> = []
  if (buf.byteLength === 2 && buf[0] === CR && buf[1] === LF) return headers
  if (end < 0) return fail("InvalidChunkTerminator", buf.byteLength)
  const error = parseFields(buf, 0, end, options(limits).maxHeaders, headers, newFraming())
  return error ?? headers
}
