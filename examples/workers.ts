/**
 * A TCP line service and a UDP echo in worker processes on the same ports (`reusePort`), under a
 * supervisor: `pnpm exec tsx --conditions=@diesel/source examples/workers.ts` (PORT, WORKERS from the
 * environment). Each answer says which worker gave it ("index generation pid"), so you can watch the
 * kernel spread TCP connections over the workers and keep each UDP peer on one of them. SIGHUP restarts
 * the workers one by one; Ctrl-C drains them all.
 */
import { Connection, Receive } from "@diesel/core"
import { Workers } from "@diesel/core/node"
import { TCPService } from "@diesel/tcp"
import { UDPConnection } from "@diesel/udp"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

const port = Number(process.env.PORT ?? 7000)
const me = `${Workers.current?.index ?? "-"} ${Workers.current?.generation ?? "-"} ${process.pid}`
// for the supervisor's restart-limit test: a worker that dies before it is ready
if (process.env.CRASH === "1" && Workers.current !== undefined) process.exit(3)

const lines = Effect.forever(
  Effect.flatMap(Receive.untilEol({ maxBytes: 1024 }), (line) => Connection.send(`${me} ${Receive.text(line)}`))
)
const echo = UDPConnection.eachDatagram((d) => Connection.send(`${me} ${Receive.text(d.payload)}`))

Workers.main(
  {
    services: Layer.mergeAll(
      TCPService.layer({ host: "127.0.0.1", port, reusePort: true, handler: lines }),
      UDPConnection.layer({ host: "127.0.0.1", port, reusePort: true, handler: echo })
    ),
    drainTimeout: "2 seconds"
  },
  { count: Number(process.env.WORKERS ?? 2) }
)
