/**
 * @diesel/http: HTTP/1.1 (codec, a server for effect/http apps) and WebSockets on diesel TCP.
 *
 * @since 0.1.0
 */
export * as Chunked from "./Chunked.js"
export * as Http1 from "./Http1.js"
export * as HttpParseError from "./HttpParseError.js"
export * as WebSocket from "./WebSocket.js"
export * as WebSocketError from "./WebSocketError.js"
export * as WebSocketServer from "./WebSocketServer.js"
