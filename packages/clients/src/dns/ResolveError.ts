/**
 * Why a name could not be resolved. Every failure of the resolver is one of these classes, tagged so that
 * `Effect.catchTag` can pick one.
 *
 * @example
 * ```ts
 * import { Resolver } from "@diesel/clients/dns"
 * import { Effect } from "effect"
 *
 * const addresses = Resolver.resolve("www.example.test", "A").pipe(
 *   Effect.catchTag("NxDomain", () => Effect.succeed(undefined))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type { DecodeError } from "./Message.js"

/**
 * The name does not exist (RCODE 3), said by `server`.
 *
 * @since 0.1.0
 */
export class NxDomain extends Data.TaggedError("NxDomain")<{
  readonly name: string
  readonly type: string
  readonly server: string
}> {
  override get message(): string {
    return `${this.name} does not exist (NXDOMAIN from ${this.server})`
  }
}

/**
 * The name exists but has no record of the type asked for.
 *
 * @since 0.1.0
 */
export class NoData extends Data.TaggedError("NoData")<{
  readonly name: string
  readonly type: string
  readonly server: string
}> {
  override get message(): string {
    return `${this.name} has no ${this.type} record (NODATA from ${this.server})`
  }
}

/**
 * Every server that answered said SERVFAIL (or another failure code, kept in `rcode`).
 *
 * @since 0.1.0
 */
export class ServerFailure extends Data.TaggedError("ServerFailure")<{
  readonly name: string
  readonly type: string
  readonly server: string
  readonly rcode: number
}> {
  override get message(): string {
    return `${this.server} failed to answer ${this.name} ${this.type} (rcode ${this.rcode})`
  }
}

/**
 * The server refused the query (RCODE 5): it does not serve that name, or not to us.
 *
 * @since 0.1.0
 */
export class Refused extends Data.TaggedError("Refused")<{
  readonly name: string
  readonly type: string
  readonly server: string
}> {
  override get message(): string {
    return `${this.server} refused ${this.name} ${this.type}`
  }
}

/**
 * No valid answer from any server within the timeout, over every attempt.
 *
 * @since 0.1.0
 */
export class ResolveTimeout extends Data.TaggedError("ResolveTimeout")<{
  readonly name: string
  readonly type: string
  readonly servers: ReadonlyArray<string>
  readonly attempts: number
}> {
  override get message(): string {
    return `no answer for ${this.name} ${this.type} from ${this.servers.join(", ")} after ${this.attempts} attempt(s)`
  }
}

/**
 * The server's answer could not be decoded, or did not fit the question.
 *
 * @since 0.1.0
 */
export class MalformedAnswer extends Data.TaggedError("MalformedAnswer")<{
  readonly name: string
  readonly type: string
  readonly server: string
  readonly cause: DecodeError | string
}> {
  override get message(): string {
    return `malformed answer from ${this.server} for ${this.name} ${this.type}: ${
      typeof this.cause === "string" ? this.cause : this.cause.message
    }`
  }
}

/**
 * A CNAME chain that loops, or is longer than the resolver follows.
 *
 * @since 0.1.0
 */
export class CnameLoop extends Data.TaggedError("CnameLoop")<{
  readonly name: string
  readonly type: string
  readonly chain: ReadonlyArray<string>
}> {
  override get message(): string {
    return `CNAME loop or chain too long for ${this.name}: ${this.chain.join(" -> ")}`
  }
}

/**
 * The name cannot be written in a query (empty label, label over 63 bytes, name over 255 bytes).
 *
 * @since 0.1.0
 */
export class BadName extends Data.TaggedError("BadName")<{
  readonly name: string
  readonly detail: string
}> {
  override get message(): string {
    return `bad DNS name ${JSON.stringify(this.name)}: ${this.detail}`
  }
}

/**
 * The way to the server failed, not the server's answer: the resolver's own socket (it could not bind one,
 * or a send failed), or nothing listening on the server's port (ICMP port unreachable).
 *
 * @since 0.1.0
 */
export class TransportError extends Data.TaggedError("DnsTransportError")<{
  readonly server: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `DNS transport to ${this.server} failed: ${String(this.cause)}`
  }
}

/**
 * Any failure of a resolution.
 *
 * @since 0.1.0
 */
export type ResolveError =
  | NxDomain
  | NoData
  | ServerFailure
  | Refused
  | ResolveTimeout
  | MalformedAnswer
  | CnameLoop
  | BadName
  | TransportError
