/**
 * Gathers completions (ack, retry, dead-letter) and settles them in batches:
 * one transport call per kind per flush. An idle worker settles at once (the
 * flush runs on the next turn of the event loop); a busy one batches whatever
 * finished while the previous flush was in flight.
 */
import type { AckItem, DeadItem, RetryItem, Transport } from "../transport/types.ts";

/** Waits before trying a failed settle again; after the last, the runs are left to their leases. */
const SETTLE_RETRIES = [100, 500, 2000];

type Pending<T> = { item: T; resolve: (ok: boolean) => void; reject: (err: unknown) => void };

/** Batches settle calls to one transport. */
export class Settler {
  readonly transport: Transport;
  #acks: Pending<AckItem>[] = [];
  #retries: Pending<RetryItem>[] = [];
  #deads: Pending<DeadItem>[] = [];
  #scheduled = false;
  #flushing: Promise<void> | undefined;
  #unsettled = 0;
  readonly #onSettled: (() => void) | undefined;
  /** Most items one transport call carries. */
  readonly maxBatch: number;

  /** `onSettled` runs each time a batch is answered (see {@link Settler.unsettled}). */
  constructor(transport: Transport, maxBatch = 500, onSettled?: () => void) {
    this.transport = transport;
    this.maxBatch = maxBatch;
    this.#onSettled = onSettled;
  }

  /** Complete a message; resolves false when the lease was lost. */
  ack(item: AckItem): Promise<boolean> {
    return this.#enqueue(this.#acks, item);
  }

  /** Put a message back at a time; resolves false when the lease was lost. */
  retry(item: RetryItem): Promise<boolean> {
    return this.#enqueue(this.#retries, item);
  }

  /** Dead-letter a message; resolves false when the lease was lost. */
  deadLetter(item: DeadItem): Promise<boolean> {
    return this.#enqueue(this.#deads, item);
  }

  /** Items waiting to be settled. */
  get pending(): number {
    return this.#acks.length + this.#retries.length + this.#deads.length;
  }

  /** Items queued or in a transport call, not answered yet. */
  get unsettled(): number {
    return this.#unsettled;
  }

  #enqueue<T>(queue: Pending<T>[], item: T): Promise<boolean> {
    this.#unsettled++;
    return new Promise<boolean>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** A batch was answered (or given up on): it no longer counts as unsettled. */
  #answered(count: number): void {
    this.#unsettled -= count;
    this.#onSettled?.();
  }

  #schedule(): void {
    if (this.#scheduled || this.#flushing) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flushing = this.#flushAll().finally(() => {
        this.#flushing = undefined;
        if (this.pending > 0) this.#schedule();
      });
    });
  }

  async #flushAll(): Promise<void> {
    await Promise.all([
      this.#flush(this.#acks, (items) => this.transport.ack(items)),
      this.#flush(this.#retries, (items) => this.transport.retry(items)),
      this.#flush(this.#deads, (items) => this.transport.deadLetter(items)),
    ]);
  }

  async #flush<T>(queue: Pending<T>[], call: (items: T[]) => Promise<boolean[]>): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.splice(0, this.maxBatch);
      const items = batch.map((p) => p.item);
      // A failed settle is tried again (a dropped connection usually comes back within a
      // second): each lost ack batch would otherwise run again once its leases end.
      for (let attempt = 0; ; attempt++) {
        try {
          const results = await call(items);
          this.#answered(batch.length);
          batch.forEach((p, i) => p.resolve(results[i] === true));
          break;
        } catch (err) {
          if (attempt >= SETTLE_RETRIES.length) {
            this.#answered(batch.length);
            for (const p of batch) p.reject(err);
            break;
          }
          await new Promise((r) => setTimeout(r, SETTLE_RETRIES[attempt]));
        }
      }
    }
  }

  /** Wait until everything queued so far is settled. */
  async drain(): Promise<void> {
    while (this.pending > 0 || this.#flushing || this.#scheduled) {
      if (this.#flushing) await this.#flushing;
      else await new Promise((r) => setImmediate(r));
    }
  }
}
