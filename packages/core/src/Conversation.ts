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
  retain(): void
  release(): void
}

// The scope and the "last owner gone" signal are made only when a `ConnectedLoop.fork` needs them: most
// conversations never fork, and an idle one then costs two objects less.
class ConversationImpl implements Conversation {
  private owners = 1
  private scopeOrUndefined: Scope.Closeable | undefined = undefined
  private doneOrUndefined: Deferred.Deferred<void> | undefined = undefined

  constructor(readonly connection: Connection.Connection) {}

  get scope(): Scope.Scope {
    if (this.scopeOrUndefined === undefined) this.scopeOrUndefined = Scope.makeUnsafe()
    return this.scopeOrUndefined
  }

  /** Completes when every owner has released the conversation. */
  get done(): Deferred.Deferred<void> {
    if (this.doneOrUndefined === undefined) {
      this.doneOrUndefined = Deferred.makeUnsafe<void>()
      if (this.owners === 0) Deferred.doneUnsafe(this.doneOrUndefined, Exit.void)
    }
    return this.doneOrUndefined
  }

  retain(): void {
    this.owners++
  }

  release(): void {
    if (--this.owners === 0 && this.doneOrUndefined !== undefined) Deferred.doneUnsafe(this.doneOrUndefined, Exit.void)
  }

  /** Every owner has released it. */
  get released(): boolean {
    return this.owners === 0
  }

  /** Close the scope (if one was made). */
  get closeScope(): Effect.Effect<void> {
    const scope = this.scopeOrUndefined
    return scope === undefined ? Effect.void : Scope.close(scope, Exit.void)
  }
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
    Effect.withFiber((fiber) => {
      const conversation = new ConversationImpl(connection)
      const label = options?.label ?? `${connection.transport} ${Connection.formatAddress(connection.remoteAddress)}`
      // one context update for the registry entry, the log annotation and both current references, made on
      // the fiber itself: a conversation blocked in its handler keeps no wrapping frames
      const entered = Loop.enterUnsafe(fiber, "conversation", label, {
        connection,
        context: (context) => Context.add(Context.add(context, Current, conversation), Connection.Current, connection)
      })
      return Effect.flatMap(Effect.exit(restore(handler)), (exit) => {
        entered.leave(fiber)
        return finish(conversation, label, exit, restore)
      })
    })
  )

/** After the handler: wait for the other owners, close the scope and the connection, report the end. */
const finish = <A, E>(
  conversation: ConversationImpl,
  label: string,
  exit: Exit.Exit<A, E>,
  restore: <X, XE, XR>(effect: Effect.Effect<X, XE, XR>) => Effect.Effect<X, XE, XR>
): Effect.Effect<End> => {
  conversation.release()
  const end = endOf(exit)
  // the common case, a handler that returned with no other owner left: no waiting, nothing to report
  if (end._tag === "Completed" && conversation.released) {
    return Effect.as(Effect.andThen(conversation.closeScope, conversation.connection.close), end)
  }
  return Effect.gen(function* () {
    if (end._tag === "Failed") {
      yield* Effect.logWarning(`conversation ${label} failed`, end.cause).pipe(Effect.annotateLogs("loop", label))
    }
    const waited =
      end._tag === "Interrupted" ? Exit.void : yield* Effect.exit(restore(Deferred.await(conversation.done)))
    yield* conversation.closeScope
    yield* conversation.connection.close
    return Exit.isSuccess(waited) ? end : interrupted
  })
}
