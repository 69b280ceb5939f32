/**
 * Time, injectable so tests can move it by hand.
 */

/** A source of time and of sleeping. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolve after `ms`, or at once when `signal` aborts. Never rejects. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener("abort", done, { once: true });
    }),
};

interface Sleeper {
  at: number;
  resolve: () => void;
}

/**
 * A clock that only moves when told. `advance()` wakes every sleeper whose time
 * has come, in order.
 */
export class VirtualClock implements Clock {
  #now: number;
  #sleepers = new Set<Sleeper>();

  /** @param start starting time in ms since the epoch (default: the real now). */
  constructor(start = Date.now()) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const sleeper: Sleeper = {
        at: this.#now + Math.max(0, ms),
        resolve: () => {
          this.#sleepers.delete(sleeper);
          signal?.removeEventListener("abort", sleeper.resolve);
          resolve();
        },
      };
      this.#sleepers.add(sleeper);
      signal?.addEventListener("abort", sleeper.resolve, { once: true });
    });
  }

  /** Move time forward by `ms`, waking due sleepers. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      let next: Sleeper | undefined;
      for (const s of this.#sleepers) if (s.at <= target && (!next || s.at < next.at)) next = s;
      if (!next) break;
      this.#now = Math.max(this.#now, next.at);
      next.resolve();
      await new Promise((r) => setImmediate(r));
    }
    this.#now = target;
  }

  /** How many sleepers are waiting (for leak checks in tests). */
  get pendingSleepers(): number {
    return this.#sleepers.size;
  }
}
