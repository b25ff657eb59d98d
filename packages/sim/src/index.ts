/**
 * @since 0.1.0
 */
export * as Link from "./Link.js"
export * as Rule from "./Rule.js"
export * as SimClock from "./SimClock.js"
export * as SimNetwork from "./SimNetwork.js"
export * as Trace from "./Trace.js"
