/**
 * The one seam where every transport call is timed and reported as a
 * `transport:call` event. Optional capabilities pass through untouched.
 */
import type { EventStream, FerryEvents, TransportCall } from "../core/events.ts";
import type { Transport } from "./types.ts";

type Op = TransportCall["op"];
const OPS: readonly Op[] = ["send", "receive", "ack", "retry", "deadLetter", "extend"];

/**
 * Wrap a transport so each core call emits a `transport:call` event. When no one
 * listens, the wrapper adds one property check per call and no promise of its own.
 */
export function instrument<T extends Transport>(transport: T, events: EventStream<FerryEvents>): T {
  const wrapped: Record<string, unknown> = {};
  for (const op of OPS) {
    const original = (transport as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[op]!.bind(transport);
    const timed = async (args: unknown[]) => {
      const started = performance.now();
      const inCount = Array.isArray(args[0]) ? args[0].length : 0;
      try {
        const out = await original(...args);
        const count = op === "receive" && Array.isArray(out) ? out.length : inCount;
        events.emit("transport:call", { transport: transport.kind, op, count, durationMs: performance.now() - started });
        return out;
      } catch (err) {
        events.emit("transport:call", { transport: transport.kind, op, count: inCount, durationMs: performance.now() - started, error: err as Error });
        throw err;
      }
    };
    wrapped[op] = (...args: unknown[]): Promise<unknown> => {
      if (events.has("transport:call")) return timed(args);
      try {
        return original(...args);
      } catch (err) {
        // A transport method that throws before its promise exists still rejects.
        return Promise.reject(err);
      }
    };
  }
  // Optional capabilities and close() reach the original with the right `this`.
  return new Proxy(wrapped as T, {
    get(target, key, receiver) {
      if (Object.prototype.hasOwnProperty.call(target, key)) return Reflect.get(target, key, receiver);
      const value = Reflect.get(transport, key, transport);
      return typeof value === "function" ? value.bind(transport) : value;
    },
  });
}
