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
  /**
   * Keep sending until this time (ms since the epoch) instead of stopping at
   * `count`; with `backlog`, waits while more than `maxBacklog` are unfinished.
   */
  until?: number;
  /** Messages sent but not finished yet (for `until`). */
  backlog?: () => number;
  /** Most unfinished messages while sending until a time. Default 5,000. */
  maxBacklog?: number;
}

/** Send `count` messages; a failed batch is logged as failed and the producer carries on. */
export async function produce(options: ProduceOptions): Promise<void> {
  const batch = options.batch ?? 250;
  const timed = options.until !== undefined;
  const more = (sent: number) => (timed ? Date.now() < options.until! : sent < options.count);
  for (let sent = 0; more(sent) && !options.signal?.aborted; sent += batch) {
    while (timed && options.backlog && options.backlog() > (options.maxBacklog ?? 5000) && Date.now() < options.until!) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const n = timed ? batch : Math.min(batch, options.count - sent);
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
