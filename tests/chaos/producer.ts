/**
 * The chaos producer: sends chaos messages in batches through a transport,
 * logging each in the enqueue history before the send and when it settles.
 */
import { createEnvelope } from "../../src/index.ts";
import type { Transport } from "../../src/index.ts";
import type { EnqueueHistory } from "./history.ts";

/** One batch to send. */
export interface ProduceOptions {
  transport: Transport;
  history: EnqueueHistory;
  channel: string;
  task: string;
  count: number;
  /** Messages per send call. Default 250. */
  batch?: number;
  /** Attempts before the dead-letter store (crashes count). */
  maxAttempts: number;
  /** Stop early when aborted. */
  signal?: AbortSignal;
  /** Called after each batch settles. */
  onBatch?: () => void;
}

/** Send `count` messages; a failed batch is logged as failed and the producer carries on. */
export async function produce(options: ProduceOptions): Promise<void> {
  const batch = options.batch ?? 250;
  for (let sent = 0; sent < options.count && !options.signal?.aborted; sent += batch) {
    const n = Math.min(batch, options.count - sent);
    const envelopes = Array.from({ length: n }, (_, i) =>
      createEnvelope({ name: options.task, channel: options.channel, payload: { seq: sent + i }, maxAttempts: options.maxAttempts }),
    );
    const ids = envelopes.map((e) => e.id);
    options.history.sent(ids, options.task);
    try {
      await options.transport.send(envelopes);
      options.history.acked(ids);
    } catch (err) {
      options.history.failed(ids, (err as Error)?.message ?? String(err));
    }
    options.onBatch?.();
  }
}
