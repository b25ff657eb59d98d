import * as Tls from "node:tls"
import { Connection, Receive } from "@diesel/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { TCPClient, type TCPConnection, TCPService } from "../src/index.js"
import { selfSigned } from "./certificate.js"
import { text } from "./helpers.js"

const echoLines = Effect.forever(Effect.flatMap(Receive.untilEol(), Connection.send))
const roundTrip = (client: TCPConnection.TCPConnection, line: string) =>
  TCPClient.call(client, Effect.andThen(Connection.send(line), Receive.untilEol())).pipe(Effect.map(text))

describe("TLS", () => {
  const certificate = selfSigned()

  it.live("a TLS service and a verifying client", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({ host: "127.0.0.1", tls: certificate, handler: echoLines })
      const client = yield* TCPClient.connect({
        host: "localhost",
        port: service.port,
        family: "ipv4",
        tls: { ca: certificate.cert }
      })
      assert.strictEqual(yield* roundTrip(client, "secret\r\n"), "secret\r\n")
    })
  )

  it.live("verification is on by default: an untrusted certificate fails to connect", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({ host: "127.0.0.1", tls: certificate, handler: echoLines })
      const error = yield* Effect.flip(TCPClient.connect({ host: "127.0.0.1", port: service.port, tls: true }))
      assert.strictEqual(error._tag, "ConnectError")
      assert.isTrue(error.tls)
      assert.isFalse(error.timedOut)
    })
  )

  it.live("the name is verified: a certificate for another name fails", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({ host: "127.0.0.1", tls: certificate, handler: echoLines })
      const error = yield* Effect.flip(
        TCPClient.connect({
          host: "127.0.0.1",
          port: service.port,
          tls: { ca: certificate.cert, servername: "example.org" }
        })
      )
      assert.strictEqual(error._tag, "ConnectError")
    })
  )

  it.live("SNI is sent: the host name by default", () =>
    Effect.gen(function* () {
      const names: Array<string | false | null> = []
      const server = Tls.createServer({ key: certificate.key, cert: certificate.cert }, (socket) => {
        names.push(socket.servername)
        socket.end("hello\r\n")
      })
      yield* Effect.acquireRelease(
        Effect.callback<void>((resume) => {
          server.listen({ host: "127.0.0.1", port: 0 }, () => resume(Effect.void))
        }),
        () => Effect.sync(() => server.close())
      )
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const client = yield* TCPClient.connect({
        host: "localhost",
        port,
        family: "ipv4",
        tls: { ca: certificate.cert }
      })
      const greeting = yield* TCPClient.call(client, Receive.untilEol())
      assert.strictEqual(text(greeting), "hello\r\n")
      assert.deepStrictEqual(names, ["localhost"])
    })
  )

  it.live("STARTTLS: upgrade a live connection on both sides", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        handler: (connection) =>
          Effect.gen(function* () {
            const command = text(yield* Receive.untilEol())
            if (command !== "STARTTLS\r\n") return yield* Connection.send("ERR\r\n")
            yield* Connection.send("OK\r\n")
            yield* connection.upgrade({ key: certificate.key, cert: certificate.cert })
            return yield* echoLines
          })
      })
      const client = yield* TCPClient.connect({ host: "localhost", family: "ipv4", port: service.port })
      assert.strictEqual(yield* roundTrip(client, "STARTTLS\r\n"), "OK\r\n")
      yield* TCPClient.startTls(client, { ca: certificate.cert })
      assert.strictEqual(yield* roundTrip(client, "over tls\r\n"), "over tls\r\n")
    })
  )

  it.live("STARTTLS with an untrusted certificate fails with UpgradeError", () =>
    Effect.gen(function* () {
      const service = yield* TCPService.make({
        host: "127.0.0.1",
        handler: (connection) =>
          Effect.gen(function* () {
            yield* Receive.untilEol()
            yield* Connection.send("OK\r\n")
            // the client rejects the certificate: the server's handshake cannot complete and times out
            yield* Effect.ignore(
              connection.upgrade({ key: certificate.key, cert: certificate.cert, timeout: "100 millis" })
            )
          })
      })
      const client = yield* TCPClient.connect({ host: "localhost", family: "ipv4", port: service.port })
      assert.strictEqual(yield* roundTrip(client, "STARTTLS\r\n"), "OK\r\n")
      const error = yield* Effect.flip(TCPClient.startTls(client))
      assert.strictEqual(error._tag, "UpgradeError")
    })
  )
})
