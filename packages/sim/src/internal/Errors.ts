/**
 * Errors shaped like Node's system errors (`code`, `syscall`), used as the `cause` of the `effect/socket`
 * errors the simulated sockets fail with, so code that inspects `cause.code` behaves the same on the
 * Node network and the simulated one.
 *
 * @internal
 */

export type SystemErrorCode =
  | "ECONNREFUSED"
  | "ECONNRESET"
  | "ETIMEDOUT"
  | "EPIPE"
  | "EADDRINUSE"
  | "EADDRNOTAVAIL"
  | "EHOSTDOWN"
  | "EHOSTUNREACH"
  | "EMSGSIZE"
  | "ENOTFOUND"

export class SimSystemError extends Error {
  readonly code: SystemErrorCode
  readonly syscall: string
  readonly host: string

  constructor(code: SystemErrorCode, syscall: string, host: string, detail?: string) {
    super(`${syscall} ${code}${detail === undefined ? "" : ` ${detail}`} (simulated host ${host})`)
    this.name = "SimSystemError"
    this.code = code
    this.syscall = syscall
    this.host = host
  }
}
