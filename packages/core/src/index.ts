/**
 * @diesel/core: the conversation runtime of diesel for Effect.
 *
 * @since 0.1.0
 */
export * as Application from "./Application.js"
export * as ByteBuffer from "./ByteBuffer.js"
export * as ConnectedLoop from "./ConnectedLoop.js"
export * as Connection from "./Connection.js"
export * as Conversation from "./Conversation.js"
export * as Dispatcher from "./Dispatcher.js"
export * as Event from "./Event.js"
export * as Loop from "./Loop.js"
export * as Mailbox from "./Mailbox.js"
export * as Network from "./Network.js"
export * as Receive from "./Receive.js"
export * as Synchronized from "./Synchronized.js"
export * as TestConnection from "./TestConnection.js"
