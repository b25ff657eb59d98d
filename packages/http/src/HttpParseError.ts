/**
 * The one error of the HTTP/1.1 codec: bytes from the network that are not HTTP/1.1 as node:http (llhttp)
 * accepts it, or that exceed a limit. `reason` says which rule was broken; `status` is the response a
 * server sends before closing the connection (400, 413, 431 or 501).
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * Why a message was rejected.
 *
 * @since 0.1.0
 * @category models
 */
export const Reason = Schema.Literals([
  "HeadTooLarge",
  "TooManyHeaders",
  "InvalidMethod",
  "InvalidTarget",
  "InvalidVersion",
  "InvalidStatus",
  "InvalidHeaderName",
  "InvalidHeaderValue",
  "ObsFold",
  "BareCR",
  "BareLF",
  "InvalidContentLength",
  "DuplicateContentLength",
  "ContentLengthWithTransferEncoding",
  "ChunkedNotLast",
  "UnsupportedTransferEncoding",
  "InvalidChunkSize",
  "InvalidChunkExtension",
  "InvalidChunkTerminator",
  "TrailersTooLarge",
  "BodyTooLarge"
])

/**
 * @since 0.1.0
 * @category models
 */
export type Reason = typeof Reason.Type

const statusOf = (reason: Reason): number => {
  switch (reason) {
    case "HeadTooLarge":
    case "TooManyHeaders":
    case "TrailersTooLarge":
      return 431
    case "BodyTooLarge":
      return 413
    case "UnsupportedTransferEncoding":
      return 501
    default:
      return 400
  }
}

/**
 * A message broken at byte `offset` (counted from the start of the head or chunk data handed to the codec).
 *
 * @example
 * ```ts
 * import { Http1, HttpParseError } from "@diesel/http"
 *
 * const result = Http1.parseRequestHead(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n"))
 * if (result instanceof HttpParseError.HttpParseError) console.log(result.reason, result.status) // ObsFold 400
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class HttpParseError extends Schema.TaggedError<HttpParseError>()("HttpParseError", {
  reason: Reason,
  offset: Schema.Number,
  detail: Schema.optional(Schema.String)
}) {
  /** The status a server answers with before closing. */
  get status(): number {
    return statusOf(this.reason)
  }
  override get message(): string {
    return `HTTP/1.1 parse error: ${this.reason} at byte ${this.offset}${this.detail === undefined ? "" : ` (${this.detail})`}`
  }
}
