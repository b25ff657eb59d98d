/**
 * @diesel/tcp: TCP services and clients as diesel conversations.
 *
 * The receive operations act on the current connection; they live in `@diesel/core` and are re-exported
 * here as `Receive` (with `Connection` for `send`/`close`), so `import { Receive } from "@diesel/tcp"`
 * works as well.
 *
 * @since 0.1.0
 */
export { Connection, Receive } from "@diesel/core"
export * as Metrics from "./Metrics.js"
export * as ProxyProtocol from "./ProxyProtocol.js"
export * as TCPClient from "./TCPClient.js"
export * as TCPConnection from "./TCPConnection.js"
export * as TCPError from "./TCPError.js"
export * as TCPService from "./TCPService.js"
