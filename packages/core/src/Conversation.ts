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
import * as References from "effect/References"
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

// One object per conversation, with methods rather than closures, and its scope and "last owner gone"
// signal made only when a `ConnectedLoop.fork` needs them: an idle conversation costs little memory.
class Live implements Conversation {
  private owners = 1
  private scopeOrUndefined: Scope.Closeable | undefined = undefined
  private done: Deferred.Deferred<void> | undefined = undefined

  constructor(readonly connection: Connection.Connection) {}

  get scope(): Scope.Scope {
    if (this.scopeOrUndefined === undefined) this.scopeOrUndefined = Scope.makeUnsafe()
    return this.scopeOrUndefined
  }

  retain(): void {
    this.owners++
  }

  release(): void {
    if (--this.owners === 0 && this.done !== undefined) Deferred.doneUnsafe(this.done, Exit.void)
  }

  /** Wait until every owner has released the conversation. */
  get released(): Effect.Effect<void> {
    if (this.owners === 0) return Effect.void
    if (this.done === undefined) this.done = Deferred.makeUnsafe<void>()
    return Deferred.await(this.done)
  }

  get close(): Effect.Effect<void> {
    const scope = this.scopeOrUndefined
    return scope === undefined
      ? this.connection.close
      : Effect.andThen(Scope.close(scope, Exit.void), this.connection.close)
  }
}

/**
 * Run `handler` as the conversation on `connection`, and return how it ended once every owning loop is
 * done and the connection is closed.
 *
 * @since 0.1.0
 */
export const run = <A, E, R>(
  connection: Connection.Connection,
  handler: Effect.Effect<A, E, R>,
  options?: {
    readonly label?: string | undefined
    /** The peer as listed by `Loop.list`; default: the connection's remote address, formatted. */
    readonly peer?: string | undefined
  }
): Effect.Effect<End, never, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.withFiber((fiber) => {
      const conversation = new Live(connection)
      const peer = options?.peer ?? Connection.formatAddress(connection.remoteAddress)
      const label = options?.label ?? `${connection.transport} ${peer}`
      const { registry, entry } = Loop.registerUnsafe(fiber, "conversation", label, connection, peer)
      // The handler's context: its conversation, connection and loop entry, and the `loop` log annotation,
      // added in one step (cheaper in memory than one `provideService` each).
      const outer = fiber.context
      const annotations = fiber.getRef(References.CurrentLogAnnotations)
      let inner = Context.add(outer, Current, conversation)
      inner = Context.add(inner, Connection.Current, connection)
      inner = Context.add(inner, Loop.Current, entry)
      inner = Context.add(inner, References.CurrentLogAnnotations, { ...annotations, loop: label })
      fiber.setContext(inner)
      return Effect.flatMap(Effect.exit(restore(handler)), (exit) => {
        fiber.setContext(outer)
        registry.delete(entry)
        conversation.release()
        const end = endOf(exit)
        const logged =
          end._tag === "Failed"
            ? Effect.logWarning(`conversation ${label} failed`, end.cause).pipe(Effect.annotateLogs("loop", label))
            : Effect.void
        const waited =
          end._tag === "Interrupted" ? Effect.succeed(Exit.void) : Effect.exit(restore(conversation.released))
        return logged.pipe(
          Effect.andThen(waited),
          Effect.flatMap((released) => Effect.as(conversation.close, Exit.isSuccess(released) ? end : interrupted))
        )
      })
    })
  )
