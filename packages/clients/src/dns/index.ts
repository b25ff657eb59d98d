/**
 * `@diesel/clients/dns`: a DNS resolver over UDP and TCP, its message codec, and a small authoritative answerer.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Authority from "./Authority.js"
/** @since 0.1.0 */
export * as Message from "./Message.js"
/** @since 0.1.0 */
export * as NetDns from "./NetDns.js"
/** @since 0.1.0 */
export * as ResolveError from "./ResolveError.js"
/** @since 0.1.0 */
export * as Resolver from "./Resolver.js"
/** @since 0.1.0 */
export * as ResolverCache from "./ResolverCache.js"
/** @since 0.1.0 */
export * as ResolverConfig from "./ResolverConfig.js"
