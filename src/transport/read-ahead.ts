/**
 * Read-ahead for a busy consumer: while a receiver keeps finding a backlog, each
 * lease statement takes more rows than were asked for and holds the rest here,
 * leased, for the receiver's next call; once the held rows run low, the next
 * batch is leased in the background while the current one runs. A consumer that
 * drains quickly then pays one round trip (and one commit) per read-ahead batch
 * rather than one per receive call.
 *
 * Only long-lived consumer loops read ahead: a receive that waits (`waitMs > 0`)
 * and carries an abort signal, as the worker's fetch loop does. A one-off
 * receive leases exactly what it asks for.
 *
 * Leases stay honest. A held row is handed out only while at most a third of its
 * lease has passed (so a handed-out lease has at least two thirds left, which is
 * when the worker's heartbeat would extend it anyway); older held rows, held rows
 * of an aborted consumer, and everything held at close go back to waiting with no
 * attempt used (`release`).
 */
import type { Delivery } from "./types.ts";

/** A leased row, with the keys that order deliveries. */
export interface Leased {
  delivery: Delivery;
  priority: number;
  wasDue: number;
  seq: number;
}

/** What read-ahead needs from the transport. */
export interface ReadAheadStore {
  /** Lease up to `max` rows of `channels`, in delivery order. */
  lease(channels: readonly string[], max: number, leaseMs: number): Promise<Leased[]>;
  /** Put leased rows back to waiting, due as before, with no attempt used. */
  release(items: readonly Delivery[]): Promise<void>;
}

/** Most rows held ahead per set of channels. */
const MAX_AHEAD = 250;

interface Held {
  leased: Leased;
  /** performance.now() when leased. */
  at: number;
}

/** The read-ahead of one set of channels. */
interface Reader {
  channels: readonly string[];
  held: Held[];
  refill: Promise<void> | undefined;
  /** The last lease statement found as many rows as it asked for. */
  backlog: boolean;
  leaseMs: number;
  /**
   * How many rows to hold ahead: at least four times the receiver's largest ask, doubled
   * each time the receiver finds nothing held while a refill is still on its way (it runs
   * faster than one lease statement per `ahead` rows), halved when held rows go stale.
   */
  ahead: number;
  timer: NodeJS.Timeout | undefined;
  /** Bumped on abort: a refill of an older generation releases what it got. */
  generation: number;
}

export const byDeliveryOrder = (a: Leased, b: Leased): number => b.priority - a.priority || a.wasDue - b.wasDue || a.seq - b.seq;

/** Read-ahead over one transport, one reader per set of channels. */
export class ReadAhead {
  readonly #store: ReadAheadStore;
  readonly #readers = new Map<string, Reader>();
  readonly #watched = new WeakMap<AbortSignal, Set<Reader>>();
  readonly #background = new Set<Promise<unknown>>();
  #closed = false;

  constructor(store: ReadAheadStore) {
    this.#store = store;
  }

  /** True when this request comes from a consumer loop that may read ahead. */
  static applies(request: { waitMs: number; signal?: AbortSignal }): boolean {
    return request.waitMs > 0 && request.signal !== undefined && !request.signal.aborted;
  }

  #reader(channels: readonly string[], signal: AbortSignal): Reader {
    const key = channels.join("\u0000");
    let r = this.#readers.get(key);
    if (!r) this.#readers.set(key, (r = { channels, held: [], refill: undefined, backlog: false, leaseMs: 0, ahead: 0, timer: undefined, generation: 0 }));
    let readers = this.#watched.get(signal);
    if (!readers) {
      this.#watched.set(signal, (readers = new Set()));
      const of = readers;
      signal.addEventListener("abort", () => of.forEach((x) => this.#abort(x)), { once: true });
    }
    readers.add(r);
    return r;
  }

  /** Hand out up to `max` held deliveries (waiting for a refill in flight when none is held). */
  async take(channels: readonly string[], max: number, leaseMs: number, signal: AbortSignal): Promise<Delivery[]> {
    const r = this.#reader(channels, signal);
    r.leaseMs = leaseMs;
    r.ahead = Math.min(MAX_AHEAD, Math.max(r.ahead, 4 * max));
    this.#dropStale(r);
    if (r.held.length === 0 && r.refill) {
      r.ahead = Math.min(MAX_AHEAD, r.ahead * 2);
      await r.refill;
      this.#dropStale(r);
    }
    const out = r.held.splice(0, max).map((h) => h.leased.delivery);
    if (out.length > 0) this.#maybeRefill(r);
    return out;
  }

  /**
   * Lease for a receive that found nothing held: up to `max` for the caller, plus
   * the read-ahead when the last statement found a backlog.
   */
  async lease(channels: readonly string[], max: number, leaseMs: number, signal: AbortSignal): Promise<Delivery[]> {
    const r = this.#reader(channels, signal);
    const ask = max + (r.backlog ? r.ahead : 0);
    const rows = await this.#store.lease(channels, ask, leaseMs);
    r.backlog = rows.length === ask;
    if (rows.length > max) this.#hold(r, rows.slice(max), r.generation);
    return rows.slice(0, max).map((l) => l.delivery);
  }

  #maybeRefill(r: Reader): void {
    if (!r.backlog || r.refill || this.#closed || r.held.length >= r.ahead) return;
    const generation = r.generation;
    const ask = r.ahead;
    const refill = this.#store
      .lease(r.channels, ask, r.leaseMs)
      .then(
        (rows) => {
          if (generation === r.generation) r.backlog = rows.length === ask;
          this.#hold(r, rows, generation);
        },
        () => {
          // The next receive's own statement reports the error.
          r.backlog = false;
        },
      )
      .finally(() => {
        if (r.refill === refill) r.refill = undefined;
      });
    r.refill = refill;
    this.#track(refill);
  }

  #hold(r: Reader, rows: readonly Leased[], generation: number): void {
    if (rows.length === 0) return;
    if (generation !== r.generation || this.#closed) {
      this.#release(rows.map((l) => l.delivery));
      return;
    }
    const at = performance.now();
    const sorted = r.held.length === 0;
    for (const leased of rows) r.held.push({ leased, at });
    if (!sorted) r.held.sort((a, b) => byDeliveryOrder(a.leased, b.leased));
    this.#arm(r);
  }

  /** Release held rows once a third of their lease has passed without a receive taking them. */
  #arm(r: Reader): void {
    if (r.timer || r.held.length === 0) return;
    const oldest = Math.min(...r.held.map((h) => h.at));
    const wait = Math.max(1, oldest + r.leaseMs / 3 - performance.now());
    r.timer = setTimeout(() => {
      r.timer = undefined;
      this.#dropStale(r);
      this.#arm(r);
    }, wait);
    r.timer.unref();
  }

  #dropStale(r: Reader): void {
    const limit = performance.now() - r.leaseMs / 3;
    if (!r.held.some((h) => h.at <= limit)) return;
    const stale = r.held.filter((h) => h.at <= limit);
    r.held = r.held.filter((h) => h.at > limit);
    // Held longer than the receiver needed: hold fewer (take() keeps four times its ask).
    r.ahead = Math.max(1, r.ahead >> 1);
    this.#release(stale.map((h) => h.leased.delivery));
  }

  #abort(r: Reader): void {
    r.generation++;
    r.backlog = false;
    clearTimeout(r.timer);
    r.timer = undefined;
    this.#release(r.held.splice(0).map((h) => h.leased.delivery));
  }

  #release(deliveries: readonly Delivery[]): void {
    if (deliveries.length === 0) return;
    this.#track(this.#store.release(deliveries).catch(() => {}));
  }

  #track(p: Promise<unknown>): void {
    this.#background.add(p);
    void p.finally(() => this.#background.delete(p));
  }

  /** Rows leased ahead and not handed out yet (diagnostics and tests). */
  get held(): number {
    let n = 0;
    for (const r of this.#readers.values()) n += r.held.length;
    return n;
  }

  /** Release everything held and wait for refills and releases in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const r of this.#readers.values()) this.#abort(r);
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  /** Release what is held for channels (a pause). */
  releaseChannel(channel: string): void {
    for (const r of this.#readers.values()) {
      if (!r.channels.includes(channel) || r.held.length === 0) continue;
      const [go, keep] = [r.held.filter((h) => h.leased.delivery.message.channel === channel), r.held.filter((h) => h.leased.delivery.message.channel !== channel)];
      r.held = keep;
      this.#release(go.map((h) => h.leased.delivery));
    }
  }
}
