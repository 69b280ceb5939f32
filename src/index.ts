/**
 * Ferry: an asynchronous message bus and job system for TypeScript on Node.js.
 */
export * from "./core/errors.ts";
export * from "./core/control.ts";
export * from "./core/duration.ts";
export * from "./core/envelope.ts";
export * from "./core/names.ts";
export * from "./core/clock.ts";
export * from "./transport/types.ts";
export * from "./transport/registry.ts";
export { MemoryTransport, type MemoryTransportOptions } from "./transport/memory/memory-transport.ts";
export * from "./core/events.ts";
export * from "./core/retry-policy.ts";
export { validatePayload, assertJson, type PayloadIssue } from "./core/schema.ts";
export * from "./bus/define.ts";
export * from "./bus/ferry.ts";
export { Worker, type WorkerOptions } from "./worker/worker.ts";
export { ProcessPool } from "./worker/pool/process-pool.ts";
export type { ProcessPoolOptions, ExecutorStats } from "./worker/pool/pool-options.ts";
export { loadApp, findFerry } from "./bus/app-module.ts";
export { type Executor } from "./worker/worker.ts";
export type { Bridge, BridgeOptions, BridgeCounts, BridgeMessage } from "./transport/amqp/bridge.ts";
