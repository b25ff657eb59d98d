import { Commands, RedisClient, RedisCommand, RedisScript } from "@diesel/clients/redis"
import { assert, describe, layer } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as RedisServer from "../harness/RedisServer.js"

const client = (options: RedisClient.Options = {}) =>
  Effect.flatMap(RedisServer.RedisServer, (server) =>
    RedisClient.make({ host: server.host, port: server.port, ...options })
  )

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined => {
  const error = Exit.findErrorOption(exit)
  return error._tag === "Some" ? error.value : undefined
}

layer(RedisServer.layer(), { timeout: 30_000, excludeTestServices: true })("RedisClient", (it) => {
  for (const protocol of [2, 3] as const) {
    describe(`RESP${protocol}`, () => {
      it.effect("negotiates the protocol", () =>
        Effect.gen(function* () {
          const redis = yield* client({ protocol })
          assert.strictEqual(yield* redis.protocol, protocol)
          assert.strictEqual(yield* redis.ping(), "PONG")
        })
      )

      it.effect("keys and strings", () =>
        Effect.gen(function* () {
          const redis = yield* client({ protocol })
          const k = `p${protocol}:str`
          yield* redis.del(k, `${k}:2`)
          assert.isTrue(yield* redis.set(k, "v1"))
          assert.isFalse(yield* redis.set(k, "v2", { condition: "NX" }))
          assert.strictEqual(yield* redis.get(k), "v1")
          assert.strictEqual(yield* redis.getset(k, "v3"), "v1")
          assert.strictEqual(yield* redis.append(k, "!"), 3)
          assert.strictEqual(yield* redis.strlen(k), 3)
          assert.strictEqual(yield* redis.get(`${k}:missing`), null)
          assert.strictEqual(yield* redis.exists(k, `${k}:missing`), 1)
          assert.strictEqual(yield* redis.type(k), "string")
          assert.strictEqual(yield* redis.incr(`${k}:n`), 1)
          assert.strictEqual(yield* redis.incrby(`${k}:n`, 10), 11)
          assert.strictEqual(yield* redis.decr(`${k}:n`), 10)
          assert.strictEqual(yield* redis.incrbyfloat(`${k}:n`, 0.5), 10.5)
          yield* redis.mset({ [`${k}:a`]: "1", [`${k}:b`]: 2 })
          assert.deepStrictEqual(yield* redis.mget(`${k}:a`, `${k}:b`, `${k}:c`), ["1", "2", null])
          assert.strictEqual(yield* redis.ttl(k), null)
          assert.isTrue(yield* redis.expire(k, "1 hour"))
          const ttl = yield* redis.ttl(k)
          assert.ok(ttl !== null && ttl !== undefined && Duration.toMillis(ttl) > 3_000_000)
          assert.strictEqual(yield* redis.ttl(`${k}:missing`), undefined)
          yield* redis.rename(k, `${k}:2`)
          assert.deepStrictEqual(yield* redis.keys(`${k}:2`), [`${k}:2`])
          const scanned = yield* redis.scan("0", { match: `${k}:*`, count: 1000 })
          assert.ok(scanned.keys.includes(`${k}:2`))
          assert.strictEqual(yield* redis.del(`${k}:2`, `${k}:n`, `${k}:a`, `${k}:b`), 4)
        })
      )

      it.effect("lists, sets, sorted sets, hashes", () =>
        Effect.gen(function* () {
          const redis = yield* client({ protocol })
          const k = `p${protocol}:coll`
          yield* redis.del(`${k}:l`, `${k}:s`, `${k}:s2`, `${k}:z`, `${k}:h`)
          assert.strictEqual(yield* redis.rpush(`${k}:l`, "a", "b", "c"), 3)
          assert.strictEqual(yield* redis.lpush(`${k}:l`, "z"), 4)
          assert.deepStrictEqual(yield* redis.lrange(`${k}:l`, 0, -1), ["z", "a", "b", "c"])
          assert.strictEqual(yield* redis.lindex(`${k}:l`, 1), "a")
          assert.strictEqual(yield* redis.lpop(`${k}:l`), "z")
          assert.strictEqual(yield* redis.rpop(`${k}:l`), "c")
          assert.strictEqual(yield* redis.llen(`${k}:l`), 2)

          assert.strictEqual(yield* redis.sadd(`${k}:s`, "x", "y", "z"), 3)
          assert.strictEqual(yield* redis.sadd(`${k}:s2`, "y"), 1)
          assert.isTrue(yield* redis.sismember(`${k}:s`, "x"))
          assert.deepStrictEqual([...(yield* redis.smembers(`${k}:s`))].sort(), ["x", "y", "z"])
          assert.deepStrictEqual(yield* redis.sinter(`${k}:s`, `${k}:s2`), ["y"])
          assert.strictEqual(yield* redis.scard(`${k}:s`), 3)

          assert.strictEqual(yield* redis.zadd(`${k}:z`, { score: 1, member: "a" }, { score: 2.5, member: "b" }), 2)
          assert.strictEqual(yield* redis.zscore(`${k}:z`, "b"), 2.5)
          assert.strictEqual(yield* redis.zscore(`${k}:z`, "nope"), null)
          assert.strictEqual(yield* redis.zincrby(`${k}:z`, 1, "a"), 2)
          assert.deepStrictEqual(yield* redis.zrangeWithScores(`${k}:z`, 0, -1), [
            { member: "a", score: 2 },
            { member: "b", score: 2.5 }
          ])
          assert.deepStrictEqual(yield* redis.zrevrange(`${k}:z`, 0, -1), ["b", "a"])
          assert.deepStrictEqual(yield* redis.zrangebyscore(`${k}:z`, "(2", "+inf"), ["b"])
          assert.strictEqual(yield* redis.zrank(`${k}:z`, "b"), 1)

          assert.strictEqual(yield* redis.hset(`${k}:h`, { f1: "v1", f2: 2 }), 2)
          assert.deepStrictEqual(yield* redis.hgetall(`${k}:h`), { f1: "v1", f2: "2" })
          assert.deepStrictEqual(yield* redis.hmget(`${k}:h`, "f1", "f3"), { f1: "v1", f3: null })
          assert.strictEqual(yield* redis.hincrby(`${k}:h`, "f2", 3), 5)
          assert.isTrue(yield* redis.hexists(`${k}:h`, "f1"))
          assert.strictEqual(yield* redis.hdel(`${k}:h`, "f1"), 1)
          assert.deepStrictEqual(yield* redis.hkeys(`${k}:h`), ["f2"])
          assert.deepStrictEqual(yield* redis.hgetall(`${k}:missing`), {})
        })
      )

      it.effect("streams", () =>
        Effect.gen(function* () {
          const redis = yield* client({ protocol })
          const k = `p${protocol}:stream`
          yield* redis.del(k)
          const id1 = yield* redis.xadd(k, { a: "1" })
          const id2 = yield* redis.xadd(k, { b: "2", c: "3" })
          assert.strictEqual(yield* redis.xlen(k), 2)
          assert.deepStrictEqual(yield* redis.xrange(k), [
            { id: id1, fields: { a: "1" } },
            { id: id2, fields: { b: "2", c: "3" } }
          ])
          assert.deepStrictEqual(yield* redis.xread({ [k]: id1 }), [
            { stream: k, entries: [{ id: id2, fields: { b: "2", c: "3" } }] }
          ])
          assert.deepStrictEqual(yield* redis.xread({ [k]: "$" }, { block: "10 millis" }), [])
          yield* redis.xgroupCreate(k, "g", "0")
          const read = yield* redis.xreadgroup("g", "c1", { [k]: ">" }, { count: 1 })
          assert.strictEqual(read[0]?.entries[0]?.id, id1)
          assert.strictEqual(yield* redis.xack(k, "g", id1), 1)
        })
      )

      it.effect("scripts: EVALSHA with a NOSCRIPT fallback", () =>
        Effect.gen(function* () {
          const redis = yield* client({ protocol })
          const script = RedisScript.make(`return {KEYS[1], ARGV[1], ${protocol}}`)
          yield* redis.scriptFlush()
          assert.deepStrictEqual(yield* redis.scriptExists(script.sha), [false])
          assert.deepStrictEqual(yield* redis.runScript(script, ["k"], ["v"]), ["k", "v", protocol])
          assert.deepStrictEqual(yield* redis.scriptExists(script.sha), [true])
          assert.deepStrictEqual(yield* redis.runScript(script, ["k2"], ["v2"]), ["k2", "v2", protocol])
        })
      )
    })
  }

  it.effect("error replies are typed and leave the connection usable", () =>
    Effect.gen(function* () {
      const redis = yield* client()
      yield* redis.set("err:str", "x")
      const exit = yield* Effect.exit(redis.lpush("err:str", "y"))
      const error = failureOf(exit)
      assert.strictEqual(error?._tag, "RedisReplyError")
      if (error?._tag === "RedisReplyError") {
        assert.strictEqual(error.code, "WRONGTYPE")
        assert.strictEqual(error.command, "LPUSH")
      }
      const unknown = failureOf(yield* Effect.exit(redis.send("NOSUCHCOMMAND", "a")))
      assert.strictEqual(unknown?._tag, "RedisReplyError")
      assert.strictEqual(yield* redis.get("err:str"), "x")
    })
  )

  it.effect("binary-safe values", () =>
    Effect.gen(function* () {
      const redis = yield* client()
      const bytes = new Uint8Array(256 * 4)
      for (let i = 0; i < bytes.length; i++) bytes[i] = i % 256
      yield* redis.set("bin:all", bytes)
      const back = yield* redis.getBuffer("bin:all")
      assert.deepStrictEqual(back === null ? null : Buffer.from(back), Buffer.from(bytes))
      const utf8 = "日本語 ✓ \r\n$-1\r\n"
      yield* redis.set("bin:utf8", utf8)
      assert.strictEqual(yield* redis.get("bin:utf8"), utf8)
      const raw = yield* redis.execute(RedisCommand.raw(["GET", "bin:all"], { binary: true }))
      assert.instanceOf(raw, Uint8Array)
    })
  )

  it.effect("1,000 concurrent callers on one connection", () =>
    Effect.gen(function* () {
      const redis = yield* client()
      yield* redis.del("conc:n")
      const results = yield* Effect.forEach(
        Array.from({ length: 1000 }, (_, i) => i),
        (i) => Effect.zip(redis.incr("conc:n"), redis.set(`conc:k${i}`, String(i))),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        results.map(([n]) => n).sort((a, b) => a - b),
        Array.from({ length: 1000 }, (_, i) => i + 1)
      )
      const values = yield* redis.mget(...Array.from({ length: 1000 }, (_, i) => `conc:k${i}`))
      assert.deepStrictEqual(
        values,
        Array.from({ length: 1000 }, (_, i) => String(i))
      )
    })
  )

  it.effect("explicit pipelines are typed and in order", () =>
    Effect.gen(function* () {
      const redis = yield* client()
      yield* redis.del("pipe:n")
      const [set, n, got, missing] = yield* redis.pipeline([
        Commands.set("pipe:k", "v"),
        Commands.incrby("pipe:n", 5),
        Commands.get("pipe:k"),
        Commands.get("pipe:missing")
      ])
      assert.isTrue(set)
      assert.strictEqual(n, 5)
      assert.strictEqual(got, "v")
      assert.strictEqual(missing, null)
      const many = yield* redis.pipeline(Array.from({ length: 100 }, () => Commands.incr("pipe:n")))
      assert.deepStrictEqual(
        many,
        Array.from({ length: 100 }, (_, i) => i + 6)
      )
      const failed = failureOf(yield* Effect.exit(redis.pipeline([Commands.incr("pipe:k"), Commands.get("pipe:k")])))
      assert.strictEqual(failed?._tag, "RedisReplyError")
    })
  )

  it.effect("transactions commit, and abort when a watched key changes", () =>
    Effect.gen(function* () {
      const redis = yield* client()
      yield* redis.del("tx:a", "tx:b")
      const committed = yield* redis.transaction(() =>
        Effect.succeed([Commands.incr("tx:a"), Commands.set("tx:b", "x")])
      )
      assert.deepStrictEqual(committed, { _tag: "Committed", results: [1, true] })

      const watched = yield* redis.transaction(
        (tx) =>
          Effect.gen(function* () {
            const a = yield* tx.execute(Commands.get("tx:a"))
            return [Commands.set("tx:a", String(Number(a) + 10))] as const
          }),
        { watch: ["tx:a"] }
      )
      assert.deepStrictEqual(watched, { _tag: "Committed", results: [true] })
      assert.strictEqual(yield* redis.get("tx:a"), "11")

      const aborted = yield* redis.transaction(
        (tx) =>
          Effect.gen(function* () {
            yield* tx.execute(Commands.get("tx:a"))
            // Someone else changes the key between WATCH and EXEC.
            yield* redis.set("tx:a", "changed")
            return [Commands.set("tx:a", "mine")] as const
          }),
        { watch: ["tx:a"] }
      )
      assert.deepStrictEqual(aborted, { _tag: "Aborted" })
      assert.strictEqual(yield* redis.get("tx:a"), "changed")

      const queueError = failureOf(
        yield* Effect.exit(
          redis.transaction(() => Effect.succeed([Commands.incr("tx:a"), RedisCommand.raw(["NOSUCH"])]))
        )
      )
      assert.strictEqual(queueError?._tag, "RedisReplyError")
      const bodyFailure = failureOf(
        yield* Effect.exit(redis.transaction(() => Effect.fail("no" as const), { watch: ["tx:a"] }))
      )
      assert.strictEqual(bodyFailure, "no")
    })
  )

  it.effect("blocking commands run on their own connections and never stall the shared one", () =>
    Effect.gen(function* () {
      const redis = yield* client()
      yield* redis.del("block:q", "block:s")
      const waiter = yield* Effect.forkChild(redis.blpop(["block:q"], 0), { startImmediately: true })
      const streamWaiter = yield* Effect.forkChild(redis.xread({ "block:s": "$" }, { block: 0 }), {
        startImmediately: true
      })
      // The shared connection still answers while both wait.
      for (let i = 0; i < 10; i++) assert.strictEqual(yield* redis.ping(), "PONG")
      // Wait until the server sees both blocked clients, then wake them.
      yield* redis.info("clients").pipe(
        Effect.filterOrFail((info) => /blocked_clients:2/.test(info)),
        Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 400 })))
      )
      yield* redis.rpush("block:q", "job")
      const id = yield* redis.xadd("block:s", { f: "v" })
      assert.deepStrictEqual(yield* Fiber.join(waiter), { key: "block:q", value: "job" })
      assert.deepStrictEqual(yield* Fiber.join(streamWaiter), [
        { stream: "block:s", entries: [{ id, fields: { f: "v" } }] }
      ])
      assert.strictEqual(yield* redis.blpop(["block:q"], "10 millis"), null)
      // An interrupted blocking command drops its connection; later ones still work.
      const interrupted = yield* Effect.forkChild(redis.brpop(["block:none"], 0), { startImmediately: true })
      yield* Fiber.interrupt(interrupted)
      yield* redis.rpush("block:q", "again")
      assert.deepStrictEqual(yield* redis.brpop(["block:q"], 1), { key: "block:q", value: "again" })
    })
  )

  it.effect("commandTimeout fails a command with RedisTimeoutError", () =>
    Effect.gen(function* () {
      const redis = yield* client({ commandTimeout: "100 millis" })
      const exit = yield* Effect.exit(redis.execute(RedisCommand.raw(["BLPOP", "timeout:none", "1"])))
      assert.strictEqual(failureOf(exit)?._tag, "RedisTimeoutError")
    })
  )

  it.effect("database selection and client name", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.RedisServer
      const db2 = yield* RedisClient.make({ url: `${server.url}/2`, clientName: "diesel-test" })
      const db0 = yield* client()
      yield* db2.set("db:k", "in-2")
      assert.strictEqual(yield* db0.get("db:k"), null)
      assert.strictEqual(yield* db2.get("db:k"), "in-2")
      assert.strictEqual(yield* db2.send("CLIENT", "GETNAME"), "diesel-test")
    })
  )

  it.effect("password and ACL user", () =>
    Effect.gen(function* () {
      const admin = yield* client()
      yield* admin.send("ACL", "SETUSER", "alice", "on", ">s3cret", "~*", "+@all")
      const alice = yield* client({ username: "alice", password: "s3cret" })
      assert.strictEqual(yield* alice.send("ACL", "WHOAMI"), "alice")
      const alice2 = yield* client({ username: "alice", password: "s3cret", protocol: 2 })
      assert.strictEqual(yield* alice2.send("ACL", "WHOAMI"), "alice")
      const wrong = failureOf(yield* Effect.exit(Effect.scoped(client({ username: "alice", password: "nope" }))))
      assert.strictEqual(wrong?._tag, "RedisReplyError")
      if (wrong?._tag === "RedisReplyError") assert.strictEqual(wrong.code, "WRONGPASS")
    })
  )
})

describe("RedisClient connection loss", () => {
  layer(RedisServer.layer(), { timeout: 30_000, excludeTestServices: true })("restart", (it) => {
    it.effect("in-flight commands fail typed when the server dies; later commands succeed after reconnect", () =>
      Effect.gen(function* () {
        const server = yield* RedisServer.RedisServer
        const redis = yield* client({ reconnect: { baseDelay: "10 millis", maxDelay: "50 millis" } })
        const observer = yield* client()
        yield* redis.set("loss:k", "v")
        // A pipeline whose head blocks the shared connection: everything behind it is in flight.
        const inflight = yield* Effect.forkChild(
          redis.pipeline([
            RedisCommand.raw(["BLPOP", "loss:never", "0"]),
            Commands.get("loss:k"),
            Commands.incr("loss:n")
          ]),
          { startImmediately: true }
        )
        yield* observer.info("clients").pipe(
          Effect.filterOrFail((info) => /blocked_clients:1/.test(info)),
          Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 400 })))
        )
        yield* server.stop
        const lost = failureOf(yield* Fiber.await(inflight))
        assert.strictEqual(lost?._tag, "RedisConnectionError")
        if (lost?._tag === "RedisConnectionError") assert.strictEqual(lost.reason, "ConnectionLost")

        // Issued while the server is down: waits in the queue, then succeeds.
        const queued = yield* Effect.forkChild(redis.set("loss:after", "1"), { startImmediately: true })
        yield* server.start
        assert.isTrue(yield* Fiber.join(queued))
        assert.strictEqual(yield* redis.get("loss:after"), "1")
        assert.strictEqual(yield* redis.ping(), "PONG")
        // Nothing was replayed: the INCR that was in flight never ran on the new server.
        assert.strictEqual(yield* redis.get("loss:n"), null)
      })
    )

    it.effect("a command its caller gave up on while disconnected is never written (timeout, interruption)", () =>
      Effect.gen(function* () {
        const server = yield* RedisServer.RedisServer
        const redis = yield* client({
          commandTimeout: "100 millis",
          reconnect: { baseDelay: "10 millis", maxDelay: "50 millis" }
        })
        yield* server.stop
        // Until the client has noticed the loss an INCR may still be written (and fail ConnectionLost, the
        // dead server never runs it); once one times out, the client is disconnected and queues.
        let timedOut = false
        for (let i = 0; i < 100 && !timedOut; i++) {
          const error = failureOf(yield* Effect.exit(redis.incr("abandoned:n")))
          assert.oneOf(error?._tag, ["RedisTimeoutError", "RedisConnectionError"])
          timedOut = error?._tag === "RedisTimeoutError"
        }
        assert.isTrue(timedOut)
        // An interruption while queued: the caller leaves, the command must go with it.
        const interrupted = yield* Effect.forkChild(redis.incr("abandoned:n"), { startImmediately: true })
        yield* Fiber.interrupt(interrupted)
        // A pipeline that times out while queued is withdrawn whole.
        const batch = failureOf(
          yield* Effect.exit(redis.pipeline([Commands.incr("abandoned:n"), Commands.incr("abandoned:n")]))
        )
        assert.strictEqual(batch?._tag, "RedisTimeoutError")
        yield* server.start
        // The server restarted empty: any INCR written after the reconnection would have created the key.
        const after = yield* redis
          .get("abandoned:n")
          .pipe(Effect.retry({ while: (e) => e._tag === "RedisTimeoutError", times: 100 }))
        assert.strictEqual(after, null)
      })
    )

    it.effect("the queue of commands waiting for a connection is bounded", () =>
      Effect.gen(function* () {
        const server = yield* RedisServer.RedisServer
        const redis = yield* client({ maxQueued: 2, reconnect: { baseDelay: "10 millis", maxDelay: "50 millis" } })
        yield* server.stop
        // Wait until the client has noticed the loss (a command then fails or queues).
        const a = yield* Effect.forkChild(redis.ping(), { startImmediately: true })
        const b = yield* Effect.forkChild(redis.ping(), { startImmediately: true })
        const c = yield* Effect.exit(redis.ping())
        const error = failureOf(c)
        assert.strictEqual(error?._tag, "RedisConnectionError")
        if (error?._tag === "RedisConnectionError") assert.oneOf(error.reason, ["QueueFull", "ConnectionLost"])
        yield* server.start
        const [ea, eb] = [yield* Fiber.await(a), yield* Fiber.await(b)]
        // Commands that were queued succeed; one racing the loss may fail typed, never hang.
        for (const e of [ea, eb]) {
          if (Exit.isFailure(e)) assert.strictEqual(failureOf(e)?._tag, "RedisConnectionError")
        }
        assert.strictEqual(yield* redis.ping(), "PONG")
      })
    )
  })

  layer(RedisServer.layer(), { timeout: 30_000, excludeTestServices: true })("refused", (it) => {
    it.effect("a malformed URL is a typed error", () =>
      Effect.gen(function* () {
        const error = failureOf(yield* Effect.exit(Effect.scoped(RedisClient.make({ url: "http://nope" }))))
        assert.strictEqual(error?._tag, "RedisConnectionError")
      })
    )

    it.effect("a layer that cannot connect fails with ConnectFailed", () =>
      Effect.gen(function* () {
        const server = yield* RedisServer.RedisServer
        yield* server.stop
        const exit = yield* Effect.exit(Effect.scoped(client()))
        const error = failureOf(exit)
        assert.strictEqual(error?._tag, "RedisConnectionError")
        if (error?._tag === "RedisConnectionError") assert.strictEqual(error.reason, "ConnectFailed")
        yield* server.start
      })
    )
  })
})
