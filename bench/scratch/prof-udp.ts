// scratch: profile one subject (not committed)
import { spawn } from "node:child_process"
import { Connection } from "@diesel/core"
import { UDPConnection } from "@diesel/udp"
import * as Effect from "effect/Effect"

const fiber = Effect.runFork(
  Effect.scoped(
    Effect.gen(function* () {
      const server = yield* UDPConnection.make({
        port: 0,
        host: "127.0.0.1",
        kernelReceiveBufferSize: 4194304,
        handler: UDPConnection.forEach((d) => Connection.send(d.payload))
      })
      const child = spawn(
        process.execPath,
        ["bench/udp-load.ts", "echo", String(server.localAddress.port), "64", "64", "8", "500", "3000"],
        { stdio: ["ignore", "inherit", "inherit"] }
      )
      yield* Effect.callback<void>((resume) => {
        child.on("exit", () => resume(Effect.void))
      })
    })
  )
)
fiber.addObserver(() => process.exit(0))
