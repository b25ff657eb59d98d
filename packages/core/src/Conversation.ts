/**
 * A conversation: one connection or UDP peer, handled by one fiber with its connection current.
 *
 * `Conversation.run` is what transports call for every accepted connection or new peer. It runs the
 * handler with the connection as the current one, registers it in the loop list, and keeps the
 * conversation open while any owning loop runs: the handler itself, and every loop started with
 * `ConnectedLoop.fork`. When the last owner ends, the conversation's scope closes (its children, timers
 * and finalizers are cleaned up) and the connection is closed. A failure is logged and reported in the
 * result; it never escapes to the transport, so one conversation cannot take down another.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Connection from "./Connection.js"
import * as Loop from "./Loop.js"

/**
 * A running conversation, as seen by the loops that share it.
 *
 * @since 0.1.0
 */
export interface Conversation {
  readonly connection: Connection.Connection
  /** Loops started with `ConnectedLoop.fork` live in this scope. */
  readonly scope: Scope.Scope
  /** Add an owner: the conversation stays open until every owner has released it. */
  readonly retain: () => void
  readonly release: () => void
}

/**
 * How a conversation ended: its handler returned, failed (or died), or was interrupted.
 *
 * @since 0.1.0
 */
export type End =
  | { readonly _tag: "Completed" }
  | { readonly _tag: "Failed"; readonly cause: Cause.Cause<unknown> }
  | { readonly _tag: "Interrupted" }

/**
 * The conversation of the running fiber, if any.
 *
 * @since 0.1.0
 */
export const Current = Context.Reference<Conversation | undefined>("@diesel/core/Conversation/Current", {
  defaultValue: () => undefined
})

const completed: End = { _tag: "Completed" }
const interrupted: End = { _tag: "Interrupted" }

const endOf = <A, E>(exit: Exit.Exit<A, E>): End =>
  Exit.isSuccess(exit)
    ? completed
    : Cause.hasInterruptsOnly(exit.cause)
      ? interrupted
      : { _tag: "Failed", cause: exit.cause }

/**
 * Run `handler` as the conversation on `connection`, and return how it ended once every owning loop is
 * done and the connection is closed.
 *
 * @since 0.1.0
 */
export const run = <A, E, R>(
  connection: Connection.Connection,
  handler: Effect.Effect<A, E, R>,
  options?: { readonly label?: string | undefined }
): Effect.Effect<End, never, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const done = Deferred.makeUnsafe<void>()
      let owners = 1
      const conversation: Conversation = {
        connection,
        scope,
        retain: () => {
          owners++
        },
        release: () => {
          if (--owners === 0) Deferred.doneUnsafe(done, Exit.void)
        }
      }
      const label = options?.label ?? `${connection.transport} ${Connection.formatAddress(connection.remoteAddress)}`
      const exit = yield* restore(handler).pipe(
        Loop.track("conversation", label),
        Effect.provideService(Current, conversation),
        Effect.provideService(Connection.Current, connection),
        Effect.exit
      )
      conversation.release()
      const end = endOf(exit)
      if (end._tag === "Failed") {
        yield* Effect.logWarning(`conversation ${label} failed`, end.cause).pipe(Effect.annotateLogs("loop", label))
      }
      const waited = end._tag === "Interrupted" ? Exit.void : yield* Effect.exit(restore(Deferred.await(done)))
      yield* Scope.close(scope, Exit.void)
      yield* connection.close
      return Exit.isSuccess(waited) ? end : interrupted
    })
  )
