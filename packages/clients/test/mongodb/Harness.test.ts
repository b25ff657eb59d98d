import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { MongoClient } from "mongodb"
import * as MockupDbServer from "../harness/MockupDbServer.js"

const official = <A>(uri: string, f: (client: MongoClient) => Promise<A>) =>
  Effect.acquireUseRelease(
    Effect.promise(() => new MongoClient(uri, { directConnection: true, monitorCommands: false }).connect()),
    (client) => Effect.promise(() => f(client)),
    (client) => Effect.promise(() => client.close())
  )

layer(MockupDbServer.layer, { timeout: 30_000, excludeTestServices: true })("MockupDB harness", (it) => {
  it.effect("records what the official driver sends and answers scripted replies", () =>
    Effect.gen(function* () {
      const server = yield* MockupDbServer.MockupDb
      yield* server.script("find", [
        { ok: 1, cursor: { id: { $numberLong: "0" }, ns: "db.c", firstBatch: [{ a: 1 }] } }
      ])
      const found = yield* official(server.uri, async (client) => {
        await client.db("db").collection<{ _id: number; x?: string; a?: number }>("c").insertOne({ _id: 1, x: "y" })
        return client.db("db").collection<{ _id: number; x?: string; a?: number }>("c").find({ a: 1 }).toArray()
      })
      assert.deepStrictEqual(JSON.stringify(found), JSON.stringify([{ a: 1 }]))
      const received = (yield* server.take).filter(
        (r) => r.command.insert !== undefined || r.command.find !== undefined
      )
      assert.deepStrictEqual(
        received.map((r) => Object.keys(r.command)[0]),
        ["insert", "find"]
      )
      assert.deepStrictEqual(received[0]?.command.documents, [{ _id: { $numberInt: "1" }, x: "y" }])
      assert.deepStrictEqual(received[1]?.command.filter, { a: { $numberInt: "1" } })
    })
  )
})
