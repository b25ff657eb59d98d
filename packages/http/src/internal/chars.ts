// Byte classes of RFC 9110/9112, as lookup tables: one array read per byte on the hot path.

/** tchar: the bytes of a token (method, header name). */
export const TOKEN = new Uint8Array(256)
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 1
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1

/** field-vchar, SP and HTAB: the bytes of a header value (obs-text included, as llhttp accepts it). */
export const VALUE = new Uint8Array(256)
VALUE[0x09] = 1
for (let c = 0x20; c <= 0x7e; c++) VALUE[c] = 1
for (let c = 0x80; c <= 0xff; c++) VALUE[c] = 1

/** The bytes of a request target (visible ASCII; llhttp rejects controls and space). */
export const TARGET = new Uint8Array(256)
for (let c = 0x21; c <= 0x7e; c++) TARGET[c] = 1

/** Hex digit values, -1 for anything else. */
export const HEX = new Int8Array(256).fill(-1)
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c
for (let c = 0; c < 6; c++) {
  HEX[0x41 + c] = 10 + c
  HEX[0x61 + c] = 10 + c
}

export const CR = 0x0d
export const LF = 0x0a
export const SP = 0x20
export const HTAB = 0x09
export const COLON = 0x3a

/** Latin-1 text of `bytes[start, end)` (header bytes are octets; latin1 keeps every one). */
export const latin1 = (bytes: Buffer, start: number, end: number): string => bytes.toString("latin1", start, end)

/** A Buffer view of `bytes` (no copy). */
export const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
