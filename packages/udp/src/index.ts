/**
 * @diesel/udp: UDP conversations for diesel on Effect.
 *
 * @since 0.1.0
 */
export * as Metrics from "./Metrics.js"
export * as UDPClientConnection from "./UDPClientConnection.js"
export * as UDPConnection from "./UDPConnection.js"
export * as UDPError from "./UDPError.js"
