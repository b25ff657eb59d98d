/**
 * The PROXY protocol (HAProxy's, versions 1 and 2): the header a load balancer such as HAProxy or nginx
 * writes at the start of a connection to say whose connection it is. Behind such a proxy, the peer of the
 * TCP connection is the proxy; the header carries the client's address and port, and (v2) TLVs such as
 * the ALPN or the SNI authority the proxy saw.
 *
 * `decode` is incremental and allocation-light: hand it the bytes received so far; it answers
 * `Incomplete` (wait for more), `Header` (with how many bytes it consumed: the rest belongs to the
 * application protocol) or fails with a `ProxyProtocolError`. A v1 header is at most 107 bytes; a v2
 * header 16 bytes plus the length it declares (at most 65,535), bounded again by `maxHeaderBytes`.
 *
 * Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 *
 * @example
 * ```ts
 * import { ProxyProtocol } from "@diesel/tcp"
 *
 * const bytes = new TextEncoder().encode("PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\nGET / HTTP/1.1\r\n")
 * const decoded = ProxyProtocol.decode(bytes)
 * if (decoded._tag === "Header" && decoded.header.command === "proxy") {
 *   console.log(decoded.header.source, decoded.consumed) // { host: "192.0.2.1", port: 56324 } 45
 * }
 * ```
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * One end of a proxied connection, as the header states it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Endpoint {
  /** An IPv4 or IPv6 address in text form, or a Unix socket path (v2 `AF_UNIX`). */
  readonly host: string
  /** The port; 0 for a Unix socket. */
  readonly port: number
}

/**
 * A type-length-value record of a v2 header (ALPN = 0x01, AUTHORITY = 0x02, CRC32C = 0x03, NOOP = 0x04,
 * UNIQUE_ID = 0x05, SSL = 0x20, NETNS = 0x30, custom 0xE0-0xEF).
 *
 * @since 0.1.0
 * @category models
 */
export interface Tlv {
  readonly type: number
  readonly value: Uint8Array
}

/**
 * A decoded header. `command: "local"` (v2 LOCAL, or v1 `UNKNOWN`) means the proxy speaks for itself
 * (a health check): use the connection's own addresses. `"proxy"` carries the client's `source` and the
 * address it connected to, `destination`.
 *
 * @since 0.1.0
 * @category models
 */
export type Header =
  | {
      readonly version: 1 | 2
      readonly command: "local"
      readonly tlvs: ReadonlyArray<Tlv>
    }
  | {
      readonly version: 1 | 2
      readonly command: "proxy"
      readonly family: "IPv4" | "IPv6" | "unix"
      readonly transport: "stream" | "datagram"
      readonly source: Endpoint
      readonly destination: Endpoint
      readonly tlvs: ReadonlyArray<Tlv>
    }

/**
 * The outcome of `decode`.
 *
 * @since 0.1.0
 * @category models
 */
export type Decoded =
  | { readonly _tag: "Incomplete" }
  | { readonly _tag: "Header"; readonly header: Header; readonly consumed: number }

/**
 * A PROXY protocol header was missing, malformed or too long. `reason` says which rule it broke.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProxyProtocolError extends Schema.TaggedError<ProxyProtocolError>()("ProxyProtocolError", {
  reason: Schema.Literals(["missing", "malformed", "unsupported", "tooLong", "timeout", "untrusted"]),
  detail: Schema.String
}) {
  override get message(): string {
    return `PROXY protocol header ${this.reason}: ${this.detail}`
  }
}

/**
 * The largest v1 header (the spec's 107 bytes, CRLF included).
 *
 * @since 0.1.0
 * @category constants
 */
export const V1_MAX_BYTES = 107

/**
 * The 12-byte signature that opens a v2 header.
 *
 * @since 0.1.0
 * @category constants
 */
export const V2_SIGNATURE: Uint8Array = Uint8Array.of(
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a
)

/**
 * TLV types of a v2 header.
 *
 * @since 0.1.0
 * @category constants
 */
export const TLV = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30
} as const

const INCOMPLETE: Decoded = { _tag: "Incomplete" }
const V1_PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20] // "PROXY "
const NO_TLVS: ReadonlyArray<Tlv> = []

// the decoders below throw on the first violation; `decode` turns the throw into its result
const fail = (reason: ProxyProtocolError["reason"], detail: string): never => {
  throw new ProxyProtocolError({ reason, detail })
}

/**
 * Decodes the header at the start of `bytes` (the bytes received so far). `Incomplete`: more bytes are
 * needed; `Header`: the header and how many bytes it took; a `ProxyProtocolError` when the bytes cannot
 * begin, or do not form, a valid header (decided as early as the bytes allow, so a client that speaks
 * the application protocol directly is refused at its first byte).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (
  bytes: Uint8Array,
  options?: { readonly maxHeaderBytes?: number | undefined }
): Decoded | ProxyProtocolError => {
  try {
    const max = options?.maxHeaderBytes ?? 16 + 65_535
    if (bytes.length === 0) return INCOMPLETE
    if (bytes[0] === 0x0d) return decodeV2(bytes, max)
    if (bytes[0] === 0x50) return decodeV1(bytes)
    return fail("missing", `the connection starts with byte 0x${(bytes[0] ?? 0).toString(16)}, not a PROXY header`)
  } catch (error) {
    if (error instanceof ProxyProtocolError) return error
    throw error
  }
}

const decodeV1 = (bytes: Uint8Array): Decoded => {
  const prefix = Math.min(bytes.length, V1_PREFIX.length)
  for (let i = 0; i < prefix; i++) {
    if (bytes[i] !== V1_PREFIX[i]) return fail("missing", 'the connection does not start with "PROXY "')
  }
  const limit = Math.min(bytes.length, V1_MAX_BYTES)
  let lf = -1
  for (let i = V1_PREFIX.length; i < limit; i++) {
    const b = bytes[i]
    if (b === 0x0a) {
      lf = i
      break
    }
    // printable US-ASCII and the CR before LF only
    if (b === undefined || b < 0x20 || b > 0x7e) {
      if (b !== 0x0d) return fail("malformed", `v1 header holds byte 0x${(b ?? 0).toString(16)}`)
    }
  }
  if (lf === -1) {
    if (bytes.length >= V1_MAX_BYTES) return fail("tooLong", `v1 header longer than ${V1_MAX_BYTES} bytes`)
    return INCOMPLETE
  }
  if (bytes[lf - 1] !== 0x0d) return fail("malformed", "v1 header ends in a bare LF")
  let line = ""
  for (let i = V1_PREFIX.length; i < lf - 1; i++) {
    const b = bytes[i] ?? 0
    if (b === 0x0d) return fail("malformed", "v1 header holds a bare CR")
    line += String.fromCharCode(b)
  }
  const consumed = lf + 1
  const parts = line.split(" ")
  const protocol = parts[0]
  if (protocol === "UNKNOWN")
    return { _tag: "Header", header: { version: 1, command: "local", tlvs: NO_TLVS }, consumed }
  if (protocol !== "TCP4" && protocol !== "TCP6") return fail("unsupported", `v1 protocol "${protocol}"`)
  if (parts.length !== 5) return fail("malformed", `v1 header has ${parts.length} fields, not 5`)
  const family = protocol === "TCP4" ? "IPv4" : "IPv6"
  const sourceHost = parseV1Address(parts[1] ?? "", family)
  const destinationHost = parseV1Address(parts[2] ?? "", family)
  const sourcePort = parseV1Port(parts[3] ?? "")
  const destinationPort = parseV1Port(parts[4] ?? "")
  return {
    _tag: "Header",
    header: {
      version: 1,
      command: "proxy",
      family,
      transport: "stream",
      source: { host: sourceHost, port: sourcePort },
      destination: { host: destinationHost, port: destinationPort },
      tlvs: NO_TLVS
    },
    consumed
  }
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/

const parseV1Address = (text: string, family: "IPv4" | "IPv6"): string => {
  if (family === "IPv4") {
    if (!IPV4.test(text)) return fail("malformed", `"${text}" is not an IPv4 address`)
    return text
  }
  const normalized = normalizeIPv6(text)
  if (normalized === undefined) return fail("malformed", `"${text}" is not an IPv6 address`)
  return normalized
}

const parseV1Port = (text: string): number => {
  // decimal, no sign, no leading zero (the spec's wording), 0-65535
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return fail("malformed", `"${text}" is not a port`)
  const port = Number(text)
  if (port > 65535) return fail("malformed", `port ${port} is over 65535`)
  return port
}

/** Parses IPv6 text (with :: and an embedded IPv4 tail) to 8 groups, then prints it in RFC 5952 form. */
const normalizeIPv6 = (text: string): string | undefined => {
  if (text.length < 2 || text.length > 45) return undefined
  const groups: Array<number> = []
  let tail = text
  let ipv4: Array<number> | undefined
  const lastColon = text.lastIndexOf(":")
  if (text.indexOf(".", lastColon) !== -1) {
    const v4 = text.slice(lastColon + 1)
    if (!IPV4.test(v4)) return undefined
    ipv4 = v4.split(".").map(Number)
    tail = text.slice(0, lastColon + 1)
    if (tail.endsWith("::")) {
      // keep "::" intact
    } else tail = tail.slice(0, -1)
  }
  const halves = tail.split("::")
  if (halves.length > 2) return undefined
  const parseHalf = (half: string): Array<number> | undefined => {
    if (half === "") return []
    const out: Array<number> = []
    for (const g of half.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      out.push(Number.parseInt(g, 16))
    }
    return out
  }
  const head = parseHalf(halves[0] ?? "")
  const rest = halves.length === 2 ? parseHalf(halves[1] ?? "") : []
  if (head === undefined || rest === undefined) return undefined
  const tailWords =
    ipv4 === undefined ? [] : [((ipv4[0] ?? 0) << 8) | (ipv4[1] ?? 0), ((ipv4[2] ?? 0) << 8) | (ipv4[3] ?? 0)]
  const known = head.length + rest.length + tailWords.length
  if (halves.length === 2) {
    if (known > 7) return undefined
    groups.push(...head, ...new Array<number>(8 - known).fill(0), ...rest, ...tailWords)
  } else {
    if (known !== 8) return undefined
    groups.push(...head, ...tailWords)
  }
  return formatIPv6(groups)
}

const formatIPv6 = (groups: ReadonlyArray<number>): string => {
  // RFC 5952: the longest run (>= 2) of zero groups becomes "::", the first such run on a tie
  let bestStart = -1
  let bestLength = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = (from: number, to: number) =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(":")
  if (bestStart === -1) return hex(0, 8)
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`
}

const decodeV2 = (bytes: Uint8Array, max: number): Decoded => {
  const prefix = Math.min(bytes.length, V2_SIGNATURE.length)
  for (let i = 0; i < prefix; i++) {
    if (bytes[i] !== V2_SIGNATURE[i]) return fail("missing", "the connection does not start with the v2 signature")
  }
  if (bytes.length < 16) return INCOMPLETE
  const versionCommand = bytes[12] ?? 0
  if (versionCommand >> 4 !== 2) return fail("unsupported", `v2 version nibble ${versionCommand >> 4}`)
  const command = versionCommand & 0x0f
  if (command > 1) return fail("unsupported", `v2 command ${command}`)
  const familyTransport = bytes[13] ?? 0
  const length = ((bytes[14] ?? 0) << 8) | (bytes[15] ?? 0)
  const total = 16 + length
  if (total > max) return fail("tooLong", `v2 header of ${total} bytes is over the limit of ${max}`)
  if (bytes.length < total) return INCOMPLETE
  const familyCode = familyTransport >> 4
  const transportCode = familyTransport & 0x0f
  const addressBytes = familyCode === 1 ? 12 : familyCode === 2 ? 36 : familyCode === 3 ? 216 : 0
  if (familyCode > 3) return fail("unsupported", `v2 address family ${familyCode}`)
  if (transportCode > 2) return fail("unsupported", `v2 transport ${transportCode}`)
  if (length < addressBytes)
    return fail("malformed", `v2 length ${length} is shorter than its addresses (${addressBytes})`)
  const tlvs = decodeTlvs(bytes, 16 + addressBytes, total)
  if (command === 0) return { _tag: "Header", header: { version: 2, command: "local", tlvs }, consumed: total }
  if (familyCode === 0 || transportCode === 0) {
    // PROXY with AF_UNSPEC: the receiver must use the connection's own addresses (as LOCAL)
    return { _tag: "Header", header: { version: 2, command: "local", tlvs }, consumed: total }
  }
  const transport = transportCode === 1 ? "stream" : "datagram"
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const [family, source, destination]: ["IPv4" | "IPv6" | "unix", Endpoint, Endpoint] =
    familyCode === 1
      ? [
          "IPv4",
          { host: ipv4At(bytes, 16), port: view.getUint16(24) },
          { host: ipv4At(bytes, 20), port: view.getUint16(26) }
        ]
      : familyCode === 2
        ? [
            "IPv6",
            { host: ipv6At(view, 16), port: view.getUint16(48) },
            { host: ipv6At(view, 32), port: view.getUint16(50) }
          ]
        : ["unix", { host: unixPathAt(bytes, 16), port: 0 }, { host: unixPathAt(bytes, 124), port: 0 }]
  return {
    _tag: "Header",
    header: { version: 2, command: "proxy", family, transport, source, destination, tlvs },
    consumed: total
  }
}

const ipv4At = (bytes: Uint8Array, at: number): string =>
  `${bytes[at] ?? 0}.${bytes[at + 1] ?? 0}.${bytes[at + 2] ?? 0}.${bytes[at + 3] ?? 0}`

const ipv6At = (view: DataView, at: number): string => {
  const groups: Array<number> = []
  for (let i = 0; i < 8; i++) groups.push(view.getUint16(at + i * 2))
  return formatIPv6(groups)
}

const unixPathAt = (bytes: Uint8Array, at: number): string => {
  let end = at
  while (end < at + 108 && bytes[end] !== 0) end++
  return new TextDecoder().decode(bytes.subarray(at, end))
}

const decodeTlvs = (bytes: Uint8Array, from: number, to: number): ReadonlyArray<Tlv> => {
  if (from === to) return NO_TLVS
  const tlvs: Array<Tlv> = []
  let at = from
  while (at < to) {
    if (to - at < 3) return fail("malformed", "v2 TLV cut short")
    const type = bytes[at] ?? 0
    const length = ((bytes[at + 1] ?? 0) << 8) | (bytes[at + 2] ?? 0)
    if (at + 3 + length > to) return fail("malformed", `v2 TLV 0x${type.toString(16)} overruns the header`)
    tlvs.push({ type, value: bytes.slice(at + 3, at + 3 + length) })
    at += 3 + length
  }
  return tlvs
}

/**
 * The text of a TLV (ALPN, AUTHORITY, UNIQUE_ID are strings), or `undefined` if the header has none.
 *
 * @since 0.1.0
 * @category accessors
 */
export const tlvText = (header: Header, type: number): string | undefined => {
  for (const tlv of header.tlvs) if (tlv.type === type) return new TextDecoder().decode(tlv.value)
  return undefined
}

/**
 * Encodes a v2 header (for tests and for diesel clients that speak through a proxy chain).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeV2 = (header: Header): Uint8Array => {
  const tlvBytes = header.tlvs.reduce((n, tlv) => n + 3 + tlv.value.length, 0)
  const addressBytes =
    header.command === "local" ? 0 : header.family === "IPv4" ? 12 : header.family === "IPv6" ? 36 : 216
  const out = new Uint8Array(16 + addressBytes + tlvBytes)
  out.set(V2_SIGNATURE, 0)
  out[12] = 0x20 | (header.command === "proxy" ? 1 : 0)
  const view = new DataView(out.buffer)
  view.setUint16(14, addressBytes + tlvBytes)
  if (header.command === "proxy") {
    const familyCode = header.family === "IPv4" ? 1 : header.family === "IPv6" ? 2 : 3
    out[13] = (familyCode << 4) | (header.transport === "stream" ? 1 : 2)
    if (header.family === "IPv4") {
      writeIPv4(out, 16, header.source.host)
      writeIPv4(out, 20, header.destination.host)
      view.setUint16(24, header.source.port)
      view.setUint16(26, header.destination.port)
    } else if (header.family === "IPv6") {
      writeIPv6(view, 16, header.source.host)
      writeIPv6(view, 32, header.destination.host)
      view.setUint16(48, header.source.port)
      view.setUint16(50, header.destination.port)
    } else {
      const encoder = new TextEncoder()
      out.set(encoder.encode(header.source.host).subarray(0, 107), 16)
      out.set(encoder.encode(header.destination.host).subarray(0, 107), 124)
    }
  }
  let at = 16 + addressBytes
  for (const tlv of header.tlvs) {
    out[at] = tlv.type
    view.setUint16(at + 1, tlv.value.length)
    out.set(tlv.value, at + 3)
    at += 3 + tlv.value.length
  }
  return out
}

/**
 * Encodes a v1 (text) header.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeV1 = (header: Header): Uint8Array => {
  const text =
    header.command === "local" || header.family === "unix"
      ? "PROXY UNKNOWN\r\n"
      : `PROXY ${header.family === "IPv4" ? "TCP4" : "TCP6"} ${header.source.host} ${header.destination.host} ${header.source.port} ${header.destination.port}\r\n`
  return new TextEncoder().encode(text)
}

const writeIPv4 = (out: Uint8Array, at: number, host: string) => {
  const parts = host.split(".")
  for (let i = 0; i < 4; i++) out[at + i] = Number(parts[i] ?? 0)
}

const writeIPv6 = (view: DataView, at: number, host: string) => {
  const normalized = normalizeIPv6(host)
  if (normalized === undefined) return fail("malformed", `"${host}" is not an IPv6 address`)
  const [head = "", rest] = normalized.split("::")
  const headGroups = head === "" ? [] : head.split(":")
  const restGroups = rest === undefined || rest === "" ? [] : rest.split(":")
  const zeros = 8 - headGroups.length - restGroups.length
  const groups = [...headGroups, ...new Array<string>(rest === undefined ? 0 : zeros).fill("0"), ...restGroups]
  for (let i = 0; i < 8; i++) view.setUint16(at + i * 2, Number.parseInt(groups[i] ?? "0", 16))
}
