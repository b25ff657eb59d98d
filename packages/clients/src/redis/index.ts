/**
 * `@diesel/clients/redis`: a Redis client for Effect.
 *
 * @since 0.1.0
 */
export * as ClusterSlot from "./ClusterSlot.js"
export * as Commands from "./Commands.js"
export * as RedisClient from "./RedisClient.js"
export * as RedisCommand from "./RedisCommand.js"
export * as RedisError from "./RedisError.js"
export * as RedisLock from "./RedisLock.js"
export * as RedisPubSub from "./RedisPubSub.js"
export * as RedisScript from "./RedisScript.js"
export * as Resp from "./Resp.js"
