/**
 * Retention in the background: deletes finished records past their retention rules, so
 * a store holds the live messages and a bounded tail of run records (PostgreSQL, SQLite
 * and RabbitMQ's run store; on Redis, whose acks trim the channels they touch, it sweeps
 * the channels no ack touches any more). It runs about once a second while this
 * process finishes messages, and once a minute otherwise (for the age limit). Each run
 * is a few bounded statements per finished state (the store's own); a deletion that
 * would outrun a run is carried over to the next.
 */
import type { ResolvedRule, RetainRules } from "./retention.ts";
import type { MessageState } from "./types.ts";

/** How often retention runs while this process finishes messages. */
export const RETAIN_BUSY_MS = 1000;
/** How often it runs when this process finished nothing (rows age past the limit anyway). */
export const RETAIN_IDLE_MS = 60_000;
/** Oldest rows considered per channel and state by one statement, by default. */
export const RETAIN_BATCH = 5000;
/** Rows per channel a statement looks at where it blocks something (SQLite and the AMQP run store the event loop, a Redis script the server). */
export const RETAIN_BATCH_SYNC = 1000;
/** Statements per state in one run at most; a larger backlog is worked off over runs. */
const RETAIN_ROUNDS = 8;

/** One retention statement: delete from `state` by `rule`, looking at `batch` rows per channel. Returns rows deleted. */
export type RetainStatement = (state: MessageState, rule: ResolvedRule, batch: number) => Promise<number>;

/** Runs retention for one transport. */
export class Retainer {
  readonly #statement: RetainStatement;
  readonly #plan: ReadonlyArray<readonly [MessageState, ResolvedRule]>;
  readonly #batch: number;
  #finished = 0;
  #lastRun = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #closed = false;

  /** `batch`: rows per channel one statement looks at (smaller where a statement blocks the event loop, as on SQLite). */
  constructor(rules: RetainRules, statement: RetainStatement, batch = RETAIN_BATCH) {
    this.#statement = statement;
    this.#batch = batch;
    const limited = (r: ResolvedRule) => r.count >= 0 || r.ageMs >= 0;
    this.#plan = [
      ...(limited(rules.completed) ? ([["completed", rules.completed], ["cancelled", rules.completed]] as const) : []),
      ...(limited(rules.dead) ? ([["dead", rules.dead]] as const) : []),
    ];
    if (this.#plan.length > 0) this.#arm();
  }

  /** An ack or dead-letter call's answers (true: that message finished): retention runs at the next tick if any did. */
  noteFinished(done: readonly boolean[]): void {
    if (done.includes(true)) this.#finished++;
  }

  /**
   * Run retention now (or join the run in progress). Returns rows deleted (0 also where the
   * store skipped the run: PostgreSQL does while another process holds its retention lock).
   */
  run(): Promise<number> {
    this.#running ??= this.#runAll().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Stop the timer and wait for a run in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => 0);
  }

  #arm(): void {
    this.#timer = setTimeout(() => this.#tick(), RETAIN_BUSY_MS);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    if (this.#closed) return;
    if (this.#finished > 0 || Date.now() - this.#lastRun >= RETAIN_IDLE_MS) {
      // A failed run (a lost connection) is retried at the next tick; nothing is lost by waiting.
      await this.run().catch(() => 0);
    }
    if (!this.#closed) this.#arm();
  }

  async #runAll(): Promise<number> {
    this.#finished = 0;
    this.#lastRun = Date.now();
    let total = 0;
    for (const [state, rule] of this.#plan) {
      for (let round = 0; round < RETAIN_ROUNDS && !this.#closed; round++) {
        const n = await this.#statement(state, rule, this.#batch);
        total += n;
        if (n < this.#batch) break;
      }
    }
    return total;
  }
}
