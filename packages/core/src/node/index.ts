/**
 * `@diesel/core/node`: what runs only on Node, apart from the portable core: worker processes
 * (`Workers`).
 *
 * @since 0.1.0
 */
export * as Workers from "./Workers.js"
