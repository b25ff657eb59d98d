/**
 * DNS messages (RFC 1035) and their wire format: an encoder with name compression and a decoder that turns
 * any malformed packet into a typed `DecodeError` (never a throw, a hang or unbounded memory).
 *
 * Names are in presentation format without the trailing dot (`www.example.test`; the root is `""`): a byte
 * that is a dot, a backslash or not printable ASCII inside a label is written `\.`, `\\` or `\DDD`.
 *
 * @example
 * ```ts
 * import { Message } from "@diesel/clients/dns"
 * import { Result } from "effect"
 *
 * const bytes = Result.getOrThrow(Message.encode(Message.query({ id: 7, name: "www.example.test", type: "A" })))
 * const decoded = Message.decode(bytes) // Result<Message, DecodeError>
 * ```
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as NetAddress from "effect/net/NetAddress"
import * as Result from "effect/Result"

// -----------------------------------------------------------------------------
// Types and classes
// -----------------------------------------------------------------------------

/**
 * Numeric codes of the record types this codec knows. Other types decode as `Unknown` records.
 *
 * @since 0.1.0
 */
export const TypeCode = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
  CAA: 257
} as const

/**
 * A record type the resolver can query and decode.
 *
 * @since 0.1.0
 */
export type RecordType = "A" | "AAAA" | "CNAME" | "MX" | "TXT" | "SRV" | "NS" | "PTR" | "SOA" | "CAA"

/**
 * Every record type of `RecordType`.
 *
 * @since 0.1.0
 */
export const recordTypes: ReadonlyArray<RecordType> = [
  "A",
  "AAAA",
  "CNAME",
  "MX",
  "TXT",
  "SRV",
  "NS",
  "PTR",
  "SOA",
  "CAA"
]

/** The name of a known type code, if any. */
const typeNames: ReadonlyMap<number, RecordType> = new Map(recordTypes.map((name) => [TypeCode[name], name]))

/**
 * The `RecordType` of a numeric type code, or `undefined`.
 *
 * @since 0.1.0
 */
export const typeName = (code: number): RecordType | undefined => typeNames.get(code)

/**
 * The class IN (internet).
 *
 * @since 0.1.0
 */
export const ClassIN = 1

/**
 * Response codes (RFC 1035 §4.1.1, RFC 6891 for the extended range).
 *
 * @since 0.1.0
 */
export const Rcode = {
  NoError: 0,
  FormErr: 1,
  ServFail: 2,
  NXDomain: 3,
  NotImp: 4,
  Refused: 5,
  BadVers: 16
} as const

/**
 * Record data by type. `Unknown` keeps the raw bytes of any other type.
 *
 * @since 0.1.0
 */
export type RData =
  | { readonly _tag: "A"; readonly address: string }
  | { readonly _tag: "AAAA"; readonly address: string }
  | { readonly _tag: "CNAME"; readonly target: string }
  | { readonly _tag: "NS"; readonly host: string }
  | { readonly _tag: "PTR"; readonly host: string }
  | { readonly _tag: "MX"; readonly priority: number; readonly exchange: string }
  | { readonly _tag: "TXT"; readonly chunks: ReadonlyArray<string> }
  | {
      readonly _tag: "SRV"
      readonly priority: number
      readonly weight: number
      readonly port: number
      readonly target: string
    }
  | {
      readonly _tag: "SOA"
      readonly primary: string
      readonly admin: string
      readonly serial: number
      readonly refresh: number
      readonly retry: number
      readonly expire: number
      readonly minimum: number
    }
  | { readonly _tag: "CAA"; readonly flags: number; readonly tag: string; readonly value: string }
  | { readonly _tag: "Unknown"; readonly type: number; readonly data: Uint8Array }

/**
 * The record data of one known type.
 *
 * @since 0.1.0
 */
export type RDataFor<T extends RecordType> = Extract<RData, { readonly _tag: T }>

/**
 * A resource record. `ttl` is in seconds.
 *
 * @since 0.1.0
 */
export interface ResourceRecord<D extends RData = RData> {
  readonly name: string
  readonly type: number
  readonly class: number
  readonly ttl: number
  readonly data: D
}

/**
 * A question: name, type and class.
 *
 * @since 0.1.0
 */
export interface Question {
  readonly name: string
  readonly type: number
  readonly class: number
}

/**
 * EDNS(0) parameters carried by the OPT pseudo-record (RFC 6891).
 *
 * @since 0.1.0
 */
export interface Edns {
  /** The largest UDP payload the sender can receive. */
  readonly udpPayloadSize: number
  readonly version: number
  readonly dnssecOk: boolean
  readonly options: ReadonlyArray<{ readonly code: number; readonly data: Uint8Array }>
}

/**
 * A DNS message. `rcode` includes the extended bits from EDNS; the OPT record is in `edns`, not in
 * `additionals`.
 *
 * @since 0.1.0
 */
export interface Message {
  readonly id: number
  /** `true` for a response. */
  readonly qr: boolean
  readonly opcode: number
  /** Authoritative answer. */
  readonly aa: boolean
  /** Truncated: the answer did not fit, ask again over TCP. */
  readonly tc: boolean
  /** Recursion desired. */
  readonly rd: boolean
  /** Recursion available. */
  readonly ra: boolean
  readonly ad: boolean
  readonly cd: boolean
  readonly rcode: number
  readonly questions: ReadonlyArray<Question>
  readonly answers: ReadonlyArray<ResourceRecord>
  readonly authorities: ReadonlyArray<ResourceRecord>
  readonly additionals: ReadonlyArray<ResourceRecord>
  readonly edns: Edns | undefined
}

/**
 * Why a packet could not be decoded.
 *
 * @since 0.1.0
 */
export type DecodeErrorReason =
  | "Truncated"
  | "PointerLoop"
  | "BadPointer"
  | "BadLabelType"
  | "NameTooLong"
  | "BadRecordData"
  | "DuplicateOpt"

/**
 * A packet that is not a well-formed DNS message, with the byte offset where decoding stopped.
 *
 * @since 0.1.0
 */
export class DecodeError extends Data.TaggedError("DnsDecodeError")<{
  readonly reason: DecodeErrorReason
  readonly offset: number
  readonly detail: string
}> {
  override get message(): string {
    return `malformed DNS message (${this.reason} at byte ${this.offset}): ${this.detail}`
  }
}

/**
 * A message that cannot be written: a name or a field out of the protocol's range.
 *
 * @since 0.1.0
 */
export class EncodeError extends Data.TaggedError("DnsEncodeError")<{
  readonly detail: string
}> {
  override get message(): string {
    return `cannot encode DNS message: ${this.detail}`
  }
}

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

/**
 * A recursive query for one name and type, with an EDNS(0) OPT record advertising `udpPayloadSize` unless it
 * is `undefined`.
 *
 * @since 0.1.0
 */
export const query = (options: {
  readonly id: number
  readonly name: string
  readonly type: RecordType | number
  readonly recursionDesired?: boolean | undefined
  readonly udpPayloadSize?: number | undefined
}): Message => ({
  id: options.id,
  qr: false,
  opcode: 0,
  aa: false,
  tc: false,
  rd: options.recursionDesired ?? true,
  ra: false,
  ad: false,
  cd: false,
  rcode: 0,
  questions: [
    {
      name: options.name,
      type: typeof options.type === "number" ? options.type : TypeCode[options.type],
      class: ClassIN
    }
  ],
  answers: [],
  authorities: [],
  additionals: [],
  edns:
    options.udpPayloadSize === undefined
      ? undefined
      : { udpPayloadSize: options.udpPayloadSize, version: 0, dnssecOk: false, options: [] }
})

/**
 * The numeric type code of record data.
 *
 * @since 0.1.0
 */
export const typeOf = (data: RData): number => (data._tag === "Unknown" ? data.type : TypeCode[data._tag])

// -----------------------------------------------------------------------------
// Names
// -----------------------------------------------------------------------------

const textDecoder = new TextDecoder()
const textEncoder = new TextEncoder()

/**
 * The characters of the name being decoded: at most 253 bytes of labels, each written as up to 4 characters
 * (`\DDD`), plus the dots between them.
 */
const nameScratch = new Uint16Array(1024)

/** Writes one label's bytes in presentation format into `nameScratch` from `n`; returns the new length. */
const writeLabel = (bytes: Uint8Array, start: number, end: number, n: number): number => {
  for (let i = start; i < end; i++) {
    const byte = bytes[i] ?? 0
    if (byte > 0x20 && byte < 0x7f && byte !== 0x2e && byte !== 0x5c) {
      nameScratch[n++] = byte
    } else if (byte === 0x2e || byte === 0x5c) {
      nameScratch[n++] = 0x5c
      nameScratch[n++] = byte
    } else {
      nameScratch[n++] = 0x5c
      nameScratch[n++] = 0x30 + Math.floor(byte / 100)
      nameScratch[n++] = 0x30 + (Math.floor(byte / 10) % 10)
      nameScratch[n++] = 0x30 + (byte % 10)
    }
  }
  return n
}

/** The first `n` characters of `nameScratch` as a string, in one step. */
const nameText = (n: number): string => Reflect.apply(String.fromCharCode, undefined, nameScratch.subarray(0, n))

/** One label's bytes in presentation format. */
const labelText = (bytes: Uint8Array, start: number, end: number): string => nameText(writeLabel(bytes, start, end, 0))

/**
 * Splits a name in presentation format into its labels as bytes. A trailing dot is ignored; `""` and `"."` are
 * the root. Fails on empty labels, labels over 63 bytes and names over 255 bytes on the wire.
 *
 * @since 0.1.0
 */
export const nameToLabels = (name: string): Result.Result<ReadonlyArray<Uint8Array>, EncodeError> => {
  if (name === "" || name === ".") return Result.succeed([])
  const labels: Array<Uint8Array> = []
  let current: Array<number> = []
  let wire = 1
  const bytes = textEncoder.encode(name)
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] ?? 0
    if (byte === 0x5c) {
      const d1 = bytes[i + 1]
      if (d1 === undefined)
        return Result.fail(new EncodeError({ detail: `dangling escape in ${JSON.stringify(name)}` }))
      if (d1 >= 0x30 && d1 <= 0x39) {
        const d2 = bytes[i + 2]
        const d3 = bytes[i + 3]
        if (d2 === undefined || d3 === undefined || d2 < 0x30 || d2 > 0x39 || d3 < 0x30 || d3 > 0x39) {
          return Result.fail(new EncodeError({ detail: `bad \\DDD escape in ${JSON.stringify(name)}` }))
        }
        const value = (d1 - 0x30) * 100 + (d2 - 0x30) * 10 + (d3 - 0x30)
        if (value > 255) return Result.fail(new EncodeError({ detail: `bad \\DDD escape in ${JSON.stringify(name)}` }))
        current.push(value)
        i += 3
      } else {
        current.push(d1)
        i += 1
      }
    } else if (byte === 0x2e) {
      if (current.length === 0)
        return Result.fail(new EncodeError({ detail: `empty label in ${JSON.stringify(name)}` }))
      if (i === bytes.length - 1) break
      labels.push(Uint8Array.from(current))
      wire += current.length + 1
      current = []
    } else {
      current.push(byte)
    }
  }
  if (current.length > 0) {
    labels.push(Uint8Array.from(current))
    wire += current.length + 1
  }
  for (const label of labels) {
    if (label.length > 63) return Result.fail(new EncodeError({ detail: `label longer than 63 bytes in ${name}` }))
  }
  if (wire > 255) return Result.fail(new EncodeError({ detail: `name longer than 255 bytes: ${name}` }))
  return Result.succeed(labels)
}

/**
 * The canonical form of a name for comparison: lower-case ASCII letters, no trailing dot.
 *
 * @since 0.1.0
 */
export const canonicalName = (name: string): string => {
  const lower = name.toLowerCase()
  return lower.endsWith(".") && !lower.endsWith("\\.") ? lower.slice(0, -1) : lower
}

// -----------------------------------------------------------------------------
// Encoder
// -----------------------------------------------------------------------------

class Writer {
  bytes: Uint8Array
  view: DataView
  length = 0
  /** Offsets of names already written, by their canonical suffix, for compression. */
  readonly names = new Map<string, number>()

  constructor(size: number) {
    this.bytes = new Uint8Array(size)
    this.view = new DataView(this.bytes.buffer)
  }

  ensure(extra: number): void {
    if (this.length + extra <= this.bytes.length) return
    const next = new Uint8Array(Math.max(this.bytes.length * 2, this.length + extra))
    next.set(this.bytes.subarray(0, this.length))
    this.bytes = next
    this.view = new DataView(next.buffer)
  }

  u8(value: number): void {
    this.ensure(1)
    this.view.setUint8(this.length, value)
    this.length += 1
  }

  u16(value: number): void {
    this.ensure(2)
    this.view.setUint16(this.length, value)
    this.length += 2
  }

  u32(value: number): void {
    this.ensure(4)
    this.view.setUint32(this.length, value)
    this.length += 4
  }

  raw(value: Uint8Array): void {
    this.ensure(value.length)
    this.bytes.set(value, this.length)
    this.length += value.length
  }

  /** Writes a name, pointing to an earlier copy of its longest known suffix when `compress`. */
  name(labels: ReadonlyArray<Uint8Array>, compress: boolean): void {
    for (let i = 0; i < labels.length; i++) {
      const key = suffixKey(labels, i)
      if (compress) {
        const offset = this.names.get(key)
        if (offset !== undefined) {
          this.u16(0xc000 | offset)
          return
        }
      }
      if (this.length <= 0x3fff) this.names.set(key, this.length)
      const label = labels[i] ?? new Uint8Array(0)
      this.u8(label.length)
      this.raw(label)
    }
    this.u8(0)
  }

  result(): Uint8Array {
    return this.bytes.slice(0, this.length)
  }
}

const suffixKey = (labels: ReadonlyArray<Uint8Array>, from: number): string => {
  let key = ""
  for (let i = from; i < labels.length; i++)
    key += `${labelText(labels[i] ?? new Uint8Array(0), 0, labels[i]?.length ?? 0).toLowerCase()}.`
  return key
}

const checkUint = (value: number, bits: 8 | 16 | 32, field: string): void => {
  const max = bits === 32 ? 0xffffffff : bits === 16 ? 0xffff : 0xff
  if (!Number.isInteger(value) || value < 0 || value > max)
    throw new EncodeError({ detail: `${field} out of range: ${value}` })
}

const labelsOrThrow = (name: string): ReadonlyArray<Uint8Array> => {
  const labels = nameToLabels(name)
  if (Result.isFailure(labels)) throw labels.failure
  return labels.success
}

const ipv4Bytes = (address: string): Uint8Array => {
  const parsed = NetAddress.ipv4FromString(address)
  if (Result.isFailure(parsed)) throw new EncodeError({ detail: `not an IPv4 address: ${address}` })
  return Uint8Array.from(NetAddress.ipv4ToOctets(parsed.success))
}

const ipv6Bytes = (address: string): Uint8Array => {
  const parsed = NetAddress.ipv6FromString(address)
  if (Result.isFailure(parsed)) throw new EncodeError({ detail: `not an IPv6 address: ${address}` })
  return Uint8Array.from(NetAddress.ipv6ToOctets(parsed.success))
}

const characterString = (w: Writer, text: string): void => {
  const bytes = textEncoder.encode(text)
  if (bytes.length > 255) throw new EncodeError({ detail: "character string longer than 255 bytes" })
  w.u8(bytes.length)
  w.raw(bytes)
}

const writeRData = (w: Writer, data: RData): void => {
  switch (data._tag) {
    case "A":
      w.raw(ipv4Bytes(data.address))
      return
    case "AAAA":
      w.raw(ipv6Bytes(data.address))
      return
    case "CNAME":
      w.name(labelsOrThrow(data.target), true)
      return
    case "NS":
    case "PTR":
      w.name(labelsOrThrow(data.host), true)
      return
    case "MX":
      checkUint(data.priority, 16, "MX priority")
      w.u16(data.priority)
      w.name(labelsOrThrow(data.exchange), true)
      return
    case "TXT":
      if (data.chunks.length === 0) {
        characterString(w, "")
        return
      }
      for (const chunk of data.chunks) characterString(w, chunk)
      return
    case "SRV":
      checkUint(data.priority, 16, "SRV priority")
      checkUint(data.weight, 16, "SRV weight")
      checkUint(data.port, 16, "SRV port")
      w.u16(data.priority)
      w.u16(data.weight)
      w.u16(data.port)
      // RFC 2782: the target is not compressed.
      w.name(labelsOrThrow(data.target), false)
      return
    case "SOA":
      w.name(labelsOrThrow(data.primary), true)
      w.name(labelsOrThrow(data.admin), true)
      for (const [field, value] of [
        ["serial", data.serial],
        ["refresh", data.refresh],
        ["retry", data.retry],
        ["expire", data.expire],
        ["minimum", data.minimum]
      ] as const) {
        checkUint(value, 32, `SOA ${field}`)
        w.u32(value)
      }
      return
    case "CAA": {
      checkUint(data.flags, 8, "CAA flags")
      const tag = textEncoder.encode(data.tag)
      if (tag.length === 0 || tag.length > 255) throw new EncodeError({ detail: "CAA tag must be 1 to 255 bytes" })
      w.u8(data.flags)
      w.u8(tag.length)
      w.raw(tag)
      w.raw(textEncoder.encode(data.value))
      return
    }
    case "Unknown":
      w.raw(data.data)
      return
  }
}

const writeRecord = (w: Writer, record: ResourceRecord): void => {
  w.name(labelsOrThrow(record.name), true)
  const type = typeOf(record.data)
  checkUint(record.class, 16, "class")
  checkUint(record.ttl, 32, "TTL")
  w.u16(type)
  w.u16(record.class)
  w.u32(record.ttl)
  const lengthAt = w.length
  w.u16(0)
  writeRData(w, record.data)
  const rdlength = w.length - lengthAt - 2
  if (rdlength > 0xffff) throw new EncodeError({ detail: "record data longer than 65535 bytes" })
  w.view.setUint16(lengthAt, rdlength)
}

/**
 * Writes a message in wire format, compressing names.
 *
 * @since 0.1.0
 */
export const encode = (message: Message): Result.Result<Uint8Array, EncodeError> => {
  try {
    const w = new Writer(512)
    checkUint(message.id, 16, "id")
    checkUint(message.opcode, 8, "opcode")
    checkUint(message.rcode, 16, "rcode")
    if (message.opcode > 15) throw new EncodeError({ detail: "opcode out of range" })
    if (message.rcode > 0xfff || (message.rcode > 15 && message.edns === undefined)) {
      throw new EncodeError({ detail: "rcode needs EDNS above 15 and must be below 4096" })
    }
    const counts = [
      message.questions.length,
      message.answers.length,
      message.authorities.length,
      message.additionals.length + (message.edns === undefined ? 0 : 1)
    ]
    for (const count of counts) checkUint(count, 16, "section count")
    w.u16(message.id)
    w.u8(
      (message.qr ? 0x80 : 0) |
        ((message.opcode & 0xf) << 3) |
        (message.aa ? 0x04 : 0) |
        (message.tc ? 0x02 : 0) |
        (message.rd ? 0x01 : 0)
    )
    w.u8((message.ra ? 0x80 : 0) | (message.ad ? 0x20 : 0) | (message.cd ? 0x10 : 0) | (message.rcode & 0xf))
    for (const count of counts) w.u16(count)
    for (const question of message.questions) {
      checkUint(question.type, 16, "question type")
      checkUint(question.class, 16, "question class")
      w.name(labelsOrThrow(question.name), true)
      w.u16(question.type)
      w.u16(question.class)
    }
    for (const record of message.answers) writeRecord(w, record)
    for (const record of message.authorities) writeRecord(w, record)
    for (const record of message.additionals) writeRecord(w, record)
    const edns = message.edns
    if (edns !== undefined) {
      checkUint(edns.udpPayloadSize, 16, "EDNS payload size")
      checkUint(edns.version, 8, "EDNS version")
      w.u8(0)
      w.u16(TypeCode.OPT)
      w.u16(edns.udpPayloadSize)
      w.u8(message.rcode >> 4)
      w.u8(edns.version)
      w.u16(edns.dnssecOk ? 0x8000 : 0)
      let length = 0
      for (const option of edns.options) length += 4 + option.data.length
      checkUint(length, 16, "EDNS options length")
      w.u16(length)
      for (const option of edns.options) {
        checkUint(option.code, 16, "EDNS option code")
        w.u16(option.code)
        w.u16(option.data.length)
        w.raw(option.data)
      }
    }
    return Result.succeed(w.result())
  } catch (error) {
    if (error instanceof EncodeError) return Result.fail(error)
    throw error
  }
}

/**
 * The wire bytes of a one-question query with ID 0 (the caller sets the ID in the first two bytes): `encode`
 * of `query(...)`, faster for the common case of a plain ASCII name.
 *
 * @since 0.1.0
 */
export const encodeQuery = (options: {
  readonly name: string
  readonly type: number
  readonly recursionDesired?: boolean | undefined
  readonly udpPayloadSize?: number | undefined
}): Result.Result<Uint8Array, EncodeError> => {
  const name = options.name
  const plain = /^[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?$/.test(name) && name.length <= 253
  if (!plain) {
    return encode(query({ id: 0, ...options }))
  }
  const relative = name.endsWith(".") ? name.slice(0, -1) : name
  const edns = options.udpPayloadSize !== undefined
  const bytes = new Uint8Array(12 + relative.length + 2 + 4 + (edns ? 11 : 0))
  bytes[2] = options.recursionDesired === false ? 0 : 1
  bytes[5] = 1
  if (edns) bytes[11] = 1
  let lengthAt = 12
  let at = 13
  for (let i = 0; i < relative.length; i++) {
    const code = relative.charCodeAt(i)
    if (code === 0x2e) {
      bytes[lengthAt] = at - lengthAt - 1
      lengthAt = at
    } else {
      bytes[at] = code
    }
    at++
  }
  bytes[lengthAt] = at - lengthAt - 1
  at++ // the root label
  bytes[at++] = options.type >> 8
  bytes[at++] = options.type & 0xff
  bytes[at++] = 0
  bytes[at++] = ClassIN
  if (edns) {
    const size = options.udpPayloadSize ?? 512
    // Root owner, type OPT, class = payload size, TTL 0, no options.
    bytes[at + 1] = 0
    bytes[at + 2] = TypeCode.OPT
    bytes[at + 3] = size >> 8
    bytes[at + 4] = size & 0xff
  }
  return Result.succeed(bytes)
}

// -----------------------------------------------------------------------------
// Decoder
// -----------------------------------------------------------------------------

/** Thrown inside the decoder only, turned into a `DecodeError` by `decode`. */
class Failure {
  constructor(
    readonly reason: DecodeErrorReason,
    readonly offset: number,
    readonly detail: string
  ) {}
}

/** At most this many compression pointers in one name: more means a loop. */
const maxPointers = 64

class Reader {
  pos = 0
  /** The OPT record, once read. */
  opt: RawRecord | undefined = undefined
  readonly view: DataView

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.bytes.length) {
      throw new Failure("Truncated", this.pos, `${what}: needs ${n} bytes, ${this.bytes.length - this.pos} left`)
    }
  }

  u8(what: string): number {
    this.need(1, what)
    const value = this.view.getUint8(this.pos)
    this.pos += 1
    return value
  }

  u16(what: string): number {
    this.need(2, what)
    const value = this.view.getUint16(this.pos)
    this.pos += 2
    return value
  }

  u32(what: string): number {
    this.need(4, what)
    const value = this.view.getUint32(this.pos)
    this.pos += 4
    return value
  }

  /** The first name of the message (the question's) and where it starts: answers usually point to it. */
  private firstName: string | undefined = undefined
  private firstNameAt = -1

  /** Reads a possibly compressed name at the current position. */
  name(): string {
    const bytes = this.bytes
    const start = this.pos
    if (
      this.firstName !== undefined &&
      bytes[start] === (0xc0 | (this.firstNameAt >> 8)) &&
      bytes[start + 1] === (this.firstNameAt & 0xff)
    ) {
      this.pos = start + 2
      return this.firstName
    }
    let at = start
    let end = -1
    let pointers = 0
    let wire = 1
    let n = 0
    for (;;) {
      if (at >= bytes.length) throw new Failure("Truncated", at, "name runs past the end")
      const length = bytes[at] ?? 0
      if (length === 0) {
        at += 1
        break
      }
      const kind = length & 0xc0
      if (kind === 0xc0) {
        if (at + 1 >= bytes.length) throw new Failure("Truncated", at, "compression pointer cut short")
        const target = ((length & 0x3f) << 8) | (bytes[at + 1] ?? 0)
        if (end === -1) end = at + 2
        if (++pointers > maxPointers) throw new Failure("PointerLoop", at, "too many compression pointers")
        if (target >= bytes.length) throw new Failure("BadPointer", at, `pointer to ${target} past the end`)
        at = target
        continue
      }
      if (kind !== 0) throw new Failure("BadLabelType", at, `label type 0x${kind.toString(16)}`)
      if (at + 1 + length > bytes.length) throw new Failure("Truncated", at, "label runs past the end")
      wire += length + 1
      if (wire > 255) throw new Failure("NameTooLong", at, "name longer than 255 bytes")
      if (n > 0) nameScratch[n++] = 0x2e
      n = writeLabel(bytes, at + 1, at + 1 + length, n)
      at += 1 + length
    }
    this.pos = end === -1 ? at : end
    const name = n === 0 ? "" : nameText(n)
    if (this.firstName === undefined) {
      this.firstName = name
      this.firstNameAt = start
    }
    return name
  }

  characterString(limit: number): string {
    const length = this.u8("character string length")
    if (this.pos + length > limit) throw new Failure("BadRecordData", this.pos, "character string past record end")
    const text = textDecoder.decode(this.bytes.subarray(this.pos, this.pos + length))
    this.pos += length
    return text
  }
}

const formatIpv4 = (bytes: Uint8Array, at: number): string =>
  `${bytes[at] ?? 0}.${bytes[at + 1] ?? 0}.${bytes[at + 2] ?? 0}.${bytes[at + 3] ?? 0}`

const readRData = (r: Reader, type: number, length: number): RData => {
  const start = r.pos
  const end = start + length
  r.need(length, "record data")
  const fixed = (expected: number, tag: string) => {
    if (length !== expected) throw new Failure("BadRecordData", start, `${tag} record of ${length} bytes`)
  }
  let data: RData
  switch (type) {
    case TypeCode.A:
      fixed(4, "A")
      data = { _tag: "A", address: formatIpv4(r.bytes, start) }
      r.pos = end
      break
    case TypeCode.AAAA:
      fixed(16, "AAAA")
      data = {
        _tag: "AAAA",
        address: NetAddress.formatIp(NetAddress.ipv6FromBytesUnsafe(r.bytes.subarray(start, end)))
      }
      r.pos = end
      break
    case TypeCode.CNAME:
      data = { _tag: "CNAME", target: r.name() }
      break
    case TypeCode.NS:
      data = { _tag: "NS", host: r.name() }
      break
    case TypeCode.PTR:
      data = { _tag: "PTR", host: r.name() }
      break
    case TypeCode.MX:
      data = { _tag: "MX", priority: r.u16("MX priority"), exchange: r.name() }
      break
    case TypeCode.TXT: {
      const chunks: Array<string> = []
      while (r.pos < end) chunks.push(r.characterString(end))
      data = { _tag: "TXT", chunks }
      break
    }
    case TypeCode.SRV:
      data = {
        _tag: "SRV",
        priority: r.u16("SRV priority"),
        weight: r.u16("SRV weight"),
        port: r.u16("SRV port"),
        target: r.name()
      }
      break
    case TypeCode.SOA:
      data = {
        _tag: "SOA",
        primary: r.name(),
        admin: r.name(),
        serial: r.u32("SOA serial"),
        refresh: r.u32("SOA refresh"),
        retry: r.u32("SOA retry"),
        expire: r.u32("SOA expire"),
        minimum: r.u32("SOA minimum")
      }
      break
    case TypeCode.CAA: {
      const flags = r.u8("CAA flags")
      const tagLength = r.u8("CAA tag length")
      if (tagLength === 0 || r.pos + tagLength > end) throw new Failure("BadRecordData", r.pos, "bad CAA tag length")
      const tag = textDecoder.decode(r.bytes.subarray(r.pos, r.pos + tagLength))
      r.pos += tagLength
      const value = textDecoder.decode(r.bytes.subarray(r.pos, end))
      r.pos = end
      data = { _tag: "CAA", flags, tag, value }
      break
    }
    default:
      data = { _tag: "Unknown", type, data: r.bytes.slice(start, end) }
      r.pos = end
  }
  if (r.pos !== end) throw new Failure("BadRecordData", start, `record data of type ${type} does not fill its length`)
  return data
}

interface RawRecord {
  readonly name: string
  readonly type: number
  readonly class: number
  readonly ttl: number
  readonly rdataAt: number
  readonly length: number
}

const noRecords: ReadonlyArray<ResourceRecord> = Object.freeze([])

/** Reads `count` records; an OPT record among the additionals is kept apart (`r.opt`), not returned. */
const readSection = (r: Reader, count: number, additionals: boolean): ReadonlyArray<ResourceRecord> => {
  if (count === 0) return noRecords
  const out: Array<ResourceRecord> = []
  for (let i = 0; i < count; i++) {
    const name = r.name()
    const type = r.u16("record type")
    const klass = r.u16("record class")
    const ttl = r.u32("record TTL")
    const length = r.u16("record data length")
    if (type === TypeCode.OPT && additionals) {
      r.need(length, "OPT data")
      if (r.opt !== undefined) throw new Failure("DuplicateOpt", r.opt.rdataAt, "more than one OPT record")
      r.opt = { name, type, class: klass, ttl, rdataAt: r.pos, length }
      r.pos += length
      continue
    }
    out.push({ name, type, class: klass, ttl, data: readRData(r, type, length) })
  }
  return out
}

const readEdns = (r: Reader, raw: RawRecord): { readonly edns: Edns; readonly extendedRcode: number } => {
  if (raw.name !== "") throw new Failure("BadRecordData", raw.rdataAt, "OPT record not owned by the root")
  const options: Array<{ code: number; data: Uint8Array }> = []
  const end = raw.rdataAt + raw.length
  r.pos = raw.rdataAt
  while (r.pos < end) {
    const code = r.u16("EDNS option code")
    const length = r.u16("EDNS option length")
    if (r.pos + length > end) throw new Failure("BadRecordData", r.pos, "EDNS option past record end")
    options.push({ code, data: r.bytes.slice(r.pos, r.pos + length) })
    r.pos += length
  }
  return {
    edns: {
      udpPayloadSize: raw.class,
      version: (raw.ttl >>> 16) & 0xff,
      dnssecOk: (raw.ttl & 0x8000) !== 0,
      options
    },
    extendedRcode: raw.ttl >>> 24
  }
}

const decodeUnsafe = (bytes: Uint8Array): Message => {
  const r = new Reader(bytes)
  const id = r.u16("header id")
  const b2 = r.u8("header flags")
  const b3 = r.u8("header flags")
  const qdcount = r.u16("question count")
  const ancount = r.u16("answer count")
  const nscount = r.u16("authority count")
  const arcount = r.u16("additional count")
  const questions: Array<Question> = []
  for (let i = 0; i < qdcount; i++) {
    const name = r.name()
    questions.push({ name, type: r.u16("question type"), class: r.u16("question class") })
  }
  const answers = readSection(r, ancount, false)
  const authorities = readSection(r, nscount, false)
  const additionals = readSection(r, arcount, true)
  let edns: Edns | undefined
  let rcode = b3 & 0x0f
  if (r.opt !== undefined) {
    const decoded = readEdns(r, r.opt)
    edns = decoded.edns
    rcode |= decoded.extendedRcode << 4
  }
  return {
    id,
    qr: (b2 & 0x80) !== 0,
    opcode: (b2 >> 3) & 0x0f,
    aa: (b2 & 0x04) !== 0,
    tc: (b2 & 0x02) !== 0,
    rd: (b2 & 0x01) !== 0,
    ra: (b3 & 0x80) !== 0,
    ad: (b3 & 0x20) !== 0,
    cd: (b3 & 0x10) !== 0,
    rcode,
    questions,
    answers,
    authorities,
    additionals,
    edns
  }
}

/**
 * Reads a message in wire format. Malformed input (cut short, compression loops, pointers or lengths past
 * the end, record data that does not match its type) gives a `DecodeError`; bytes after the last record are
 * ignored.
 *
 * @since 0.1.0
 */
export const decode = (bytes: Uint8Array): Result.Result<Message, DecodeError> => {
  try {
    return Result.succeed(decodeUnsafe(bytes))
  } catch (error) {
    if (error instanceof Failure) {
      return Result.fail(new DecodeError({ reason: error.reason, offset: error.offset, detail: error.detail }))
    }
    throw error
  }
}

/**
 * The message ID of a packet, or `undefined` when it is shorter than a header.
 *
 * @since 0.1.0
 */
export const peekId = (bytes: Uint8Array): number | undefined =>
  bytes.length < 12 ? undefined : ((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0)

/**
 * Whether a question matches another: same type and class, and the same name ignoring ASCII case.
 *
 * @since 0.1.0
 */
export const sameQuestion = (a: Question, b: Question): boolean =>
  a.type === b.type && a.class === b.class && sameName(a.name, b.name)

/**
 * Whether two names are the same name: equal ignoring ASCII case and a trailing dot.
 *
 * @since 0.1.0
 */
export const sameName = (a: string, b: string): boolean => a === b || canonicalName(a) === canonicalName(b)
