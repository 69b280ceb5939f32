/**
 * The client-side enqueue history: every message is logged when it is sent
 * and again when the transport acknowledged it (or the send failed), so the
 * checker knows which messages Ferry promised to keep.
 */

/** Where one enqueue stands. */
export type EnqueueState = "sent" | "acked" | "failed";

/** One logged enqueue. */
export interface EnqueueEntry {
  id: string;
  task: string;
  state: EnqueueState;
  sentAt: number;
  /** When the send resolved or rejected. */
  settledAt?: number;
  error?: string;
}

/** The history of one run's enqueues, kept in the producer's memory. */
export class EnqueueHistory {
  readonly #entries = new Map<string, EnqueueEntry>();

  /** Log messages as sent (before the send call). */
  sent(ids: readonly string[], task: string): void {
    const now = Date.now();
    for (const id of ids) this.#entries.set(id, { id, task, state: "sent", sentAt: now });
  }

  /** Log messages the transport acknowledged. */
  acked(ids: readonly string[]): void {
    const now = Date.now();
    for (const id of ids) {
      const e = this.#entries.get(id);
      if (e) Object.assign(e, { state: "acked", settledAt: now });
    }
  }

  /** Log messages whose send failed or timed out: they may or may not be stored. */
  failed(ids: readonly string[], error: string): void {
    const now = Date.now();
    for (const id of ids) {
      const e = this.#entries.get(id);
      if (e) Object.assign(e, { state: "failed", settledAt: now, error });
    }
  }

  /** One entry by message id. */
  get(id: string): EnqueueEntry | undefined {
    return this.#entries.get(id);
  }

  /** Every entry, in send order. */
  entries(): EnqueueEntry[] {
    return [...this.#entries.values()];
  }

  /** Ids of acknowledged enqueues, optionally of one task. */
  ackedIds(task?: string): string[] {
    return this.entries().filter((e) => e.state === "acked" && (task === undefined || e.task === task)).map((e) => e.id);
  }

  /** How many entries are in each state. */
  counts(): Record<EnqueueState, number> {
    const out: Record<EnqueueState, number> = { sent: 0, acked: 0, failed: 0 };
    for (const e of this.#entries.values()) out[e.state]++;
    return out;
  }
}
