/**
 * A small batch-pulling worker loop for the raw-client limits: take up to
 * `concurrency` tasks in one call, run their handlers together, repeat; when the
 * store is empty, wait via `idle()` (a blocking pop, or a short sleep).
 */
import type { BenchHandler, BenchPayload, RunningWorker } from "../systems/types.ts";

/** How the loop takes work from a store. */
export interface LoopSource {
  /** Take up to `max` tasks (already removed or leased); empty when none is ready. */
  take(max: number): Promise<BenchPayload[]>;
  /** Wait for work after an empty take; may return tasks it already took (a blocking pop). Default: sleep 2 ms. */
  idle?(): Promise<BenchPayload[]>;
  /** Acknowledge finished tasks (AMQP acks); optional. */
  done?(count: number): Promise<void> | void;
}

/** Start the loop; `stop()` ends it after the current batch. */
export function startLoopWorker(source: LoopSource, concurrency: number, handler: BenchHandler): RunningWorker {
  let stopping = false;
  const run = async (): Promise<void> => {
    let sinceYield = 0;
    while (!stopping) {
      // A synchronous store (SQLite) never yields on its own: let timers and IPC run now and then.
      if (++sinceYield >= 32) {
        sinceYield = 0;
        await new Promise((r) => setImmediate(r));
      }
      let batch = await source.take(concurrency);
      if (batch.length === 0) {
        batch = source.idle ? await source.idle() : await sleep(2).then(() => []);
        if (batch.length === 0) continue;
      }
      await Promise.all(batch.map((p) => handler(p)));
      await source.done?.(batch.length);
    }
  };
  const loop = run();
  return {
    async stop() {
      stopping = true;
      await loop.catch(() => undefined);
    },
  };
}

/** Resolve after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
