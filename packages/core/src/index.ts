export * as Network from "./Network.js"
