/**
 * @diesel/http: HTTP/1.1 (codec, a server for effect/http apps) and WebSockets on diesel TCP.
 *
 * @since 0.1.0
 */
export {}
