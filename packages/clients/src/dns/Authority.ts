/**
 * The answering half of an authoritative DNS server, as a pure function from query bytes to response bytes
 * over a zone held in memory: exact matches, CNAMEs (followed inside the zone), wildcards, NODATA and
 * NXDOMAIN with the SOA for negative caching, REFUSED outside the zone, FORMERR for malformed queries, EDNS(0)
 * and truncation over UDP. Wire it to any datagram transport (e.g. `UDPConnection`) to get a server `dig`
 * can query.
 *
 * @example
 * ```ts
 * import { Authority } from "@diesel/clients/dns"
 *
 * const zone = Authority.zone("example.test", [
 *   { name: "www.example.test", type: 1, class: 1, ttl: 60, data: { _tag: "A", address: "10.0.0.1" } }
 * ])
 * const response = Authority.respond(zone, queryBytes, { transport: "udp" }) // Uint8Array | undefined
 * ```
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as Message from "./Message.js"

/**
 * A zone: its origin, SOA and records, indexed by canonical owner name.
 *
 * @since 0.1.0
 */
export interface Zone {
  readonly origin: string
  readonly soa: Message.ResourceRecord
  readonly byName: ReadonlyMap<string, ReadonlyArray<Message.ResourceRecord>>
}

/**
 * Builds a zone. Without an SOA record at the origin among `records`, a default one is made.
 *
 * @since 0.1.0
 */
export const zone = (origin: string, records: ReadonlyArray<Message.ResourceRecord>): Zone => {
  const canonicalOrigin = Message.canonicalName(origin)
  const byName = new Map<string, Array<Message.ResourceRecord>>()
  let soa: Message.ResourceRecord | undefined
  for (const record of records) {
    const name = Message.canonicalName(record.name)
    if (record.data._tag === "SOA" && name === canonicalOrigin) soa = record
    const list = byName.get(name)
    if (list === undefined) byName.set(name, [record])
    else list.push(record)
  }
  soa ??= {
    name: canonicalOrigin,
    type: Message.TypeCode.SOA,
    class: Message.ClassIN,
    ttl: 3600,
    data: {
      _tag: "SOA",
      primary: `ns.${canonicalOrigin}`,
      admin: `hostmaster.${canonicalOrigin}`,
      serial: 1,
      refresh: 7200,
      retry: 3600,
      expire: 1209600,
      minimum: 60
    }
  }
  return { origin: canonicalOrigin, soa, byName }
}

/**
 * Options of `respond`: the transport decides truncation (UDP answers larger than the client accepts are
 * sent empty with TC set, so that it asks again over TCP).
 *
 * @since 0.1.0
 */
export interface RespondOptions {
  readonly transport: "udp" | "tcp"
  /** The largest UDP payload this server sends, whatever the client advertises (default 1232). */
  readonly maxUdpPayload?: number | undefined
}

const inZone = (zone: Zone, name: string): boolean =>
  zone.origin === "" || name === zone.origin || name.endsWith(`.${zone.origin}`)

/** The records at `name`, or at the closest wildcard `*.parent` when no record exists at `name` itself. */
const recordsAt = (zone: Zone, name: string): ReadonlyArray<Message.ResourceRecord> | undefined => {
  const exact = zone.byName.get(name)
  if (exact !== undefined) return exact
  let parent = name
  while (parent !== zone.origin && parent.includes(".")) {
    parent = parent.slice(parent.indexOf(".") + 1)
    const wildcard = zone.byName.get(`*.${parent}`)
    if (wildcard !== undefined) return wildcard.map((record) => ({ ...record, name }))
    // Only the wildcard of the closest existing ancestor applies (RFC 4592).
    if (zone.byName.has(parent)) return undefined
  }
  return undefined
}

const nameExists = (zone: Zone, name: string): boolean => {
  if (recordsAt(zone, name) !== undefined) return true
  // An empty non-terminal: some name below it exists.
  for (const owner of zone.byName.keys()) if (owner.endsWith(`.${name}`)) return true
  return false
}

const reply = (query: Message.Message, rcode: number, fields: Partial<Message.Message> = {}): Message.Message => ({
  id: query.id,
  qr: true,
  opcode: query.opcode,
  aa: rcode === Message.Rcode.NoError || rcode === Message.Rcode.NXDomain,
  tc: false,
  rd: query.rd,
  ra: false,
  ad: false,
  cd: query.cd,
  rcode,
  questions: query.questions,
  answers: [],
  authorities: [],
  additionals: [],
  edns: query.edns === undefined ? undefined : { udpPayloadSize: 1232, version: 0, dnssecOk: false, options: [] },
  ...fields
})

/**
 * Answers one parsed query from a zone.
 *
 * @since 0.1.0
 */
export const answer = (zone: Zone, query: Message.Message): Message.Message => {
  if (query.opcode !== 0) return reply(query, Message.Rcode.NotImp)
  const question = query.questions[0]
  if (question === undefined || query.questions.length !== 1) return reply(query, Message.Rcode.FormErr)
  if (query.edns !== undefined && query.edns.version > 0) return reply(query, Message.Rcode.BadVers)
  let name = Message.canonicalName(question.name)
  if (!inZone(zone, name)) return reply(query, Message.Rcode.Refused, { aa: false })
  const answers: Array<Message.ResourceRecord> = []
  const seen = new Set<string>()
  for (let hop = 0; hop < 16; hop++) {
    seen.add(name)
    const records = recordsAt(zone, name)
    if (records === undefined) {
      if (nameExists(zone, name)) break
      return reply(query, Message.Rcode.NXDomain, { answers, authorities: [zone.soa] })
    }
    const matching = records.filter(
      (record) => question.type === Message.TypeCode.ANY || Message.typeOf(record.data) === question.type
    )
    if (matching.length > 0) {
      answers.push(...matching)
      return reply(query, Message.Rcode.NoError, { answers })
    }
    const cname = records.find((record) => record.data._tag === "CNAME")
    if (cname === undefined || cname.data._tag !== "CNAME") break
    answers.push(cname)
    const target = Message.canonicalName(cname.data.target)
    if (seen.has(target) || !inZone(zone, target)) return reply(query, Message.Rcode.NoError, { answers })
    name = target
  }
  // NODATA: the name exists without records of that type.
  return reply(query, Message.Rcode.NoError, { answers, authorities: [zone.soa] })
}

const header = (bytes: Uint8Array, rcode: number): Uint8Array => {
  // Echo the ID and opcode, set QR, no sections: the reply to a query we cannot parse.
  const out = new Uint8Array(12)
  out[0] = bytes[0] ?? 0
  out[1] = bytes[1] ?? 0
  out[2] = 0x80 | ((bytes[2] ?? 0) & 0x79)
  out[3] = rcode
  return out
}

/**
 * Answers query bytes with response bytes, or `undefined` when nothing should be sent back (a response, or
 * fewer bytes than a header). Malformed queries get FORMERR.
 *
 * @since 0.1.0
 */
export const respond = (zone: Zone, bytes: Uint8Array, options: RespondOptions): Uint8Array | undefined => {
  if (bytes.length < 12 || ((bytes[2] ?? 0) & 0x80) !== 0) return undefined
  const decoded = Message.decode(bytes)
  if (Result.isFailure(decoded)) return header(bytes, Message.Rcode.FormErr)
  const response = answer(zone, decoded.success)
  const encoded = Message.encode(response)
  if (Result.isFailure(encoded)) return header(bytes, Message.Rcode.ServFail)
  if (options.transport === "tcp") return encoded.success
  const limit = Math.min(options.maxUdpPayload ?? 1232, Math.max(512, decoded.success.edns?.udpPayloadSize ?? 512))
  if (encoded.success.length <= limit) return encoded.success
  const truncated = Message.encode({ ...response, tc: true, answers: [], authorities: [], additionals: [] })
  return Result.isSuccess(truncated) ? truncated.success : header(bytes, Message.Rcode.ServFail)
}
