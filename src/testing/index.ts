/**
 * `ferry/testing`: helpers for testing code that uses Ferry. An in-memory Ferry
 * on a virtual clock, `drain()`, records of what was dispatched, published and
 * run, and `runTask()` to call one handler directly.
 */
export { createTestFerry, TestFerry, type DispatchedRecord, type DrainOptions, type PublishedRecord, type TestFerryOptions } from "./test-ferry.ts";
export { VirtualClock } from "../core/clock.ts";
export { MemoryTransport } from "../transport/memory/memory-transport.ts";
