/**
 * The run store: what RabbitMQ cannot answer (a message's state, attempts,
 * errors and result; counts per state; listing; live dedup keys), kept in a
 * small SQLite file beside the broker. One row per message: inserted at send and
 * updated when it finishes, each batch in one transaction.
 *
 * Few writes per task: a lease is not written when taken. It waits in memory
 * for {@link START_FLUSH_MS}; when the outcome comes first (most tasks), one
 * update records both start and outcome. Leases still running then are written
 * as `active` in one transaction. Outcomes (finish) are gathered for one tick
 * and written in one transaction, off the caller's path. Every read and every
 * other write first writes what is pending, so this process always reads its
 * own writes. A crash can lose the last tick of outcomes and the last
 * {@link START_FLUSH_MS} of leases from the record (never from the broker,
 * which stays the source of truth for delivery).
 *
 * Table `ferry_amqp_runs` (SQL below): takes one row per message id, scoped by
 * `ns` (the transport's prefix); `envelope` is the wire-format JSON as sent;
 * `errors` a JSON array (capped history); `result` JSON. A partial unique index
 * on `(ns, dedup_key)` over live rows (waiting, active) makes dedup atomic, also
 * across processes sharing the file.
 *
 * The broker stays the source of truth for delivery: a message whose row is
 * missing (another process with another file, a lost file) is still delivered,
 * with its attempt counted from AMQP headers.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { decodeEnvelope, type Envelope } from "../../core/envelope.ts";
import { FerryError } from "../../core/errors.ts";
import { retainStep } from "../sqlite/sqlite-admin.ts";
import { busyTimeoutOf, lockWait } from "../sqlite/sqlite-errors.ts";
import { appendError, MESSAGE_STATES, type AttemptError, type ChannelCounts, type ListQuery, type MessageRecord, type MessageState } from "../types.ts";

/**
 * Retention's statements (named parameters), read through the state index (whose entries
 * end in the rowid): the channels holding @state, a channel's count edge, and the deletion
 * among a channel's @batch oldest records.
 */
const RETAIN_SQL = {
  channels: `
    WITH RECURSIVE chs(ch) AS (
      SELECT min(channel) FROM ferry_amqp_runs WHERE ns = @ns AND state = @state
      UNION ALL
      SELECT (SELECT min(channel) FROM ferry_amqp_runs WHERE ns = @ns AND state = @state AND channel > chs.ch) FROM chs WHERE chs.ch IS NOT NULL
    ) SELECT ch FROM chs WHERE ch IS NOT NULL`,
  edge: `SELECT rowid FROM ferry_amqp_runs WHERE ns = @ns AND state = @state AND channel = @ch ORDER BY rowid DESC LIMIT 1 OFFSET @count`,
  doom: `
    DELETE FROM ferry_amqp_runs WHERE rowid IN (
      SELECT rowid FROM ferry_amqp_runs WHERE ns = @ns AND state = @state AND channel = @ch ORDER BY rowid LIMIT @batch
    ) AND (rowid <= @last OR finished_at < @before)`,
} as const;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ferry_amqp_runs (
  id          TEXT    NOT NULL PRIMARY KEY,
  ns          TEXT    NOT NULL,
  channel     TEXT    NOT NULL,
  state       TEXT    NOT NULL,
  envelope    TEXT    NOT NULL,
  run_at      INTEGER NOT NULL,
  attempt     INTEGER NOT NULL DEFAULT 0,
  dedup_key   TEXT,
  errors      TEXT,
  result      TEXT,
  started_at  INTEGER,
  finished_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS ferry_amqp_runs_dedup ON ferry_amqp_runs (ns, dedup_key)
  WHERE dedup_key IS NOT NULL AND state IN ('waiting', 'active');
CREATE INDEX IF NOT EXISTS ferry_amqp_runs_state ON ferry_amqp_runs (ns, state, channel);
`;

interface Row {
  id: string;
  channel: string;
  state: MessageState;
  envelope: string;
  run_at: number;
  attempt: number;
  errors: string | null;
  result: string | null;
  started_at: number | null;
  finished_at: number | null;
}

/** How a send was stored. */
export interface StoredReceipt {
  id: string;
  deduplicated: boolean;
}

/** A write that failed off the caller's path (the file busy past its timeout) is tried again after this long. */
const RETRY_MS = 200;
/** Writes of ended leases tried before the record is left as it was. */
const REQUEUE_TRIES = 5;

/** Leases taken are written at most this long after (unless their outcome comes first). */
export const START_FLUSH_MS = 200;

/** A lease taken: the attempt it counts and when it started. */
export interface StartItem {
  id: string;
  attempt: number;
  startedAt: number;
}

/** A finished message. */
export interface FinishItem {
  id: string;
  state: "completed" | "cancelled" | "dead";
  /** The attempt that finished it, with its start (absent when unknown: kept as stored). */
  attempt?: number;
  startedAt?: number;
  result?: unknown;
  error?: AttemptError;
}

/** Options of {@link RunStore}. */
export interface RunStoreOptions {
  /** Hears of writes that failed off the caller's path (what they held is kept and retried). */
  report?: (message: string, details?: Record<string, unknown>) => void;
  /**
   * How long a write waits for another process holding the file, in ms. Default 5,000. The wait
   * is on timers (see {@link RunStore.wait}), so the event loop runs meanwhile.
   */
  busyTimeoutMs?: number;
}

/** SQLite record of every message's run, scoped to one transport prefix. */
export class RunStore {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #ns: string;
  readonly #stmt;
  /** Leases taken but not written yet, by id. */
  #pending = new Map<string, StartItem>();
  #flushTimer: NodeJS.Timeout | undefined;
  /** Outcomes not written yet, in order. */
  #finished: FinishItem[] = [];
  #finishedAt: number[] = [];
  #flushScheduled = false;
  readonly #report: (message: string, details?: Record<string, unknown>) => void;
  readonly #busyTimeoutMs: number;
  readonly #stillOpen = (): void => {
    if (!this.#db.open) throw new FerryError("TRANSPORT_CLOSED", `the AMQP run store at ${JSON.stringify(this.path)} is closed`);
  };

  /** Open (and create) the store at `path`, for queues under prefix `ns`. */
  constructor(path: string, ns: string, options: RunStoreOptions = {}) {
    this.path = path;
    this.#ns = ns;
    this.#report = options.report ?? (() => undefined);
    this.#busyTimeoutMs = busyTimeoutOf(options.busyTimeoutMs);
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    try {
      this.#db = new Database(path);
      this.#db.pragma("journal_mode = WAL");
      this.#db.pragma("synchronous = NORMAL");
      this.#db.pragma(`busy_timeout = ${this.#busyTimeoutMs}`);
      this.#db.exec(SCHEMA);
      // From here on another process's write lock is waited for on timers (wait(), and the
      // deferred writes below): SQLite's own wait would block the event loop.
      this.#db.pragma("busy_timeout = 0");
    } catch (err) {
      throw new FerryError("TRANSPORT_UNAVAILABLE", `cannot open the AMQP run store at ${JSON.stringify(path)}: ${(err as Error).message}; set ?runStore= to a writable file or ?runStore=off`, { cause: err });
    }
    const db = this.#db;
    this.#stmt = {
      insert: db.prepare(`INSERT OR IGNORE INTO ferry_amqp_runs (id, ns, channel, state, envelope, run_at, dedup_key) VALUES (?, ?, ?, 'waiting', ?, ?, ?)`),
      exists: db.prepare(`SELECT 1 FROM ferry_amqp_runs WHERE id = ?`).pluck(),
      liveKey: db.prepare(`SELECT id FROM ferry_amqp_runs WHERE ns = ? AND dedup_key = ? AND state IN ('waiting', 'active')`).pluck(),
      remove: db.prepare(`DELETE FROM ferry_amqp_runs WHERE id = ? AND ns = ?`),
      start: db.prepare(`UPDATE ferry_amqp_runs SET state = 'active', attempt = ?, started_at = ? WHERE id = ? AND ns = ? AND state IN ('waiting', 'active')`),
      finish: db.prepare(`UPDATE ferry_amqp_runs SET state = ?, result = ?, finished_at = ?, attempt = COALESCE(?, attempt), started_at = COALESCE(?, started_at) WHERE id = ? AND ns = ?`),
      errors: db.prepare(`SELECT errors FROM ferry_amqp_runs WHERE id = ? AND ns = ?`).pluck(),
      dead: db.prepare(`UPDATE ferry_amqp_runs SET state = 'dead', errors = ?, finished_at = ?, attempt = COALESCE(?, attempt), started_at = COALESCE(?, started_at) WHERE id = ? AND ns = ?`),
      retry: db.prepare(`UPDATE ferry_amqp_runs SET state = 'waiting', run_at = ?, attempt = ?, errors = ? WHERE id = ? AND ns = ?`),
      requeue: db.prepare(`UPDATE ferry_amqp_runs SET state = 'waiting', attempt = ? WHERE id = ? AND ns = ? AND state IN ('waiting', 'active')`),
      // a live message holding the same dedupKey keeps it: the replayed one comes back without it
      replay: db.prepare(`UPDATE ferry_amqp_runs AS r SET state = 'waiting', attempt = 0, run_at = ?, finished_at = NULL,
        dedup_key = CASE WHEN EXISTS (SELECT 1 FROM ferry_amqp_runs l WHERE l.ns = r.ns AND l.dedup_key = r.dedup_key AND l.state IN ('waiting', 'active') AND l.id <> r.id) THEN NULL ELSE r.dedup_key END
        WHERE id = ? AND ns = ?`),
      get: db.prepare(`SELECT * FROM ferry_amqp_runs WHERE id = ? AND ns = ?`),
      counts: db.prepare(`SELECT channel, state, COUNT(*) AS n, SUM(state = 'waiting' AND run_at > ?) AS delayed FROM ferry_amqp_runs WHERE ns = ? GROUP BY channel, state`),
      list: db.prepare(`SELECT * FROM ferry_amqp_runs WHERE ns = ? AND state = ? ORDER BY rowid DESC LIMIT ? OFFSET ?`),
      listChannel: db.prepare(`SELECT * FROM ferry_amqp_runs WHERE ns = ? AND state = ? AND channel = ? ORDER BY rowid DESC LIMIT ? OFFSET ?`),
      prune: db.prepare(`DELETE FROM ferry_amqp_runs WHERE ns = ? AND state = ? AND finished_at < ?`),
      retain: { channels: db.prepare(RETAIN_SQL.channels), edge: db.prepare(RETAIN_SQL.edge), doom: db.prepare(RETAIN_SQL.doom) },
    };
  }

  /**
   * Run calls of this store from an async caller, waiting for another process's write lock on
   * timers, up to `busyTimeoutMs` (see `lockWait`). Each call is one transaction, after writing
   * what is pending (which a retry finds written), so a call that met the lock is run again.
   */
  wait<T>(fn: (store: this) => T): Promise<T> {
    return lockWait(() => fn(this), this.#busyTimeoutMs, this.#stillOpen);
  }

  /** Record new messages; a known id or a live dedupKey is reported as deduplicated. */
  insert(messages: readonly Envelope[], bodies: readonly string[]): StoredReceipt[] {
    this.#writeFinished();
    const s = this.#stmt;
    return this.#db.transaction(() =>
      messages.map((m, i) => {
        const info = s.insert.run(m.id, this.#ns, m.channel, bodies[i], m.runAt, m.dedupKey);
        if (info.changes === 1) return { id: m.id, deduplicated: false };
        if (s.exists.get(m.id) !== undefined) return { id: m.id, deduplicated: true };
        const holder = m.dedupKey === null ? undefined : (s.liveKey.get(this.#ns, m.dedupKey) as string | undefined);
        if (holder === undefined) throw new FerryError("INVALID_MESSAGE", `message ${m.id} could not be recorded in the run store`);
        return { id: holder, deduplicated: true };
      }),
    ).immediate();
  }

  /** Forget rows of a send that failed, so that a retried send is not taken for a duplicate. */
  remove(ids: readonly string[]): void {
    this.#writeFinished();
    this.#db.transaction(() => {
      for (const id of ids) this.#stmt.remove.run(id, this.#ns);
    }).immediate();
  }

  /** Note leases taken; written later, or folded into their outcome (see the file's header). */
  started(items: readonly StartItem[]): void {
    for (const item of items) this.#pending.set(item.id, item);
    if (this.#flushTimer === undefined && this.#pending.size > 0) {
      this.#flushTimer = setTimeout(() => this.#flushLater(), START_FLUSH_MS);
      this.#flushTimer.unref();
    }
  }

  /** Write every pending outcome, then every pending lease as `active`, now. */
  flush(): void {
    this.#writeFinished();
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#pending.size === 0 || !this.#db.open) return;
    const items = [...this.#pending.values()];
    this.#pending.clear();
    try {
      this.#db.transaction(() => {
        for (const item of items) this.#stmt.start.run(item.attempt, item.startedAt, item.id, this.#ns);
      }).immediate();
    } catch (err) {
      // Kept, and written by the next flush.
      for (const item of items) this.#pending.set(item.id, item);
      this.#flushTimer ??= setTimeout(() => this.#flushLater(), RETRY_MS).unref();
      throw err;
    }
  }

  /**
   * The timer's flush: waits out another process's write lock (see {@link wait}); a failure past
   * that keeps what it could not write and tries again shortly. Never throws.
   */
  #flushLater(): void {
    this.#flushTimer = undefined;
    this.wait((s) => s.flush()).catch((err: unknown) => {
      if (!this.#db.open) return;
      this.#report(`could not write leases or outcomes to the run store (kept, retried in ${RETRY_MS} ms): ${(err as Error).message}`, { code: (err as { code?: string }).code });
      this.#flushTimer ??= setTimeout(() => this.#flushLater(), RETRY_MS).unref();
    });
  }

  /** Record completions, cancellations and dead letters (with their lease, when not written yet), within a tick. */
  finish(items: readonly FinishItem[], now: number): void {
    for (const item of items) {
      this.#pending.delete(item.id);
      this.#finished.push(item);
      this.#finishedAt.push(now);
    }
    if (!this.#flushScheduled && this.#finished.length > 0) {
      this.#flushScheduled = true;
      setImmediate(() => this.#writeFinishedLater());
    }
  }

  /**
   * The deferred write of outcomes: waits out another process's write lock (see {@link wait});
   * a failure past that keeps them and tries again shortly. Never throws.
   */
  #writeFinishedLater(): void {
    this.wait(() => this.#writeFinished()).catch((err: unknown) => {
      if (!this.#db.open) return;
      this.#report(`could not write ${this.#finished.length} outcomes to the run store (kept, retried in ${RETRY_MS} ms): ${(err as Error).message}`, { code: (err as { code?: string }).code });
      // The lease flush writes outcomes first: the retry is the next flush, whichever comes first.
      this.#flushTimer ??= setTimeout(() => this.#flushLater(), RETRY_MS).unref();
    });
  }

  /** Write the outcomes gathered so far; on failure they stay gathered and the error is thrown. */
  #writeFinished(): void {
    this.#flushScheduled = false;
    if (this.#finished.length === 0 || !this.#db.open) return;
    const items = this.#finished;
    const at = this.#finishedAt;
    this.#finished = [];
    this.#finishedAt = [];
    try {
      this.#writeOutcomes(items, at);
    } catch (err) {
      this.#finished = items.concat(this.#finished);
      this.#finishedAt = at.concat(this.#finishedAt);
      throw err;
    }
  }

  #writeOutcomes(items: readonly FinishItem[], at: readonly number[]): void {
    const s = this.#stmt;
    this.#db.transaction(() => {
      items.forEach((item, i) => {
        const attempt = item.attempt ?? null;
        const startedAt = item.startedAt ?? null;
        if (item.state === "dead") {
          const errors = this.#errors(item.id);
          s.dead.run(JSON.stringify(item.error ? appendError(errors, item.error) : errors), at[i], attempt, startedAt, item.id, this.#ns);
        } else {
          s.finish.run(item.state, item.result === undefined ? null : JSON.stringify(item.result), at[i], attempt, startedAt, item.id, this.#ns);
        }
      });
    }).immediate();
  }

  /** Record messages put back to waiting, due at `runAt`, with the attempts used so far. */
  retry(items: readonly { id: string; runAt: number; attempt: number; error?: AttemptError | undefined }[]): void {
    this.#writeFinished();
    this.#db.transaction(() => {
      for (const item of items) {
        this.#pending.delete(item.id);
        const errors = this.#errors(item.id);
        this.#stmt.retry.run(item.runAt, item.attempt, JSON.stringify(item.error ? appendError(errors, item.error) : errors), item.id, this.#ns);
      }
    }).immediate();
  }

  /**
   * Record leases that ended without an outcome (expired, connection lost, closed): waiting again,
   * the attempt used. Called from timers and connection events, so it never throws: a failed write
   * is reported and tried again shortly, {@link REQUEUE_TRIES} times in all (the broker, not this
   * record, decides delivery; a record left `active` is corrected by the message's next outcome).
   */
  requeue(items: readonly { id: string; attempt: number }[], tries = 1): void {
    if (items.length === 0 || !this.#db.open) return;
    // Written now when the file is free; else after another process's write lock (see wait).
    this.wait(() => {
      this.#writeFinished();
      this.#db.transaction(() => {
        for (const item of items) {
          this.#pending.delete(item.id);
          this.#stmt.requeue.run(item.attempt, item.id, this.#ns);
        }
      }).immediate();
    }).catch((err: unknown) => {
      if (!this.#db.open) return;
      const again = tries < REQUEUE_TRIES;
      this.#report(`could not record ${items.length} ended leases in the run store (${again ? `retried in ${RETRY_MS} ms` : "left as active until their next outcome"}): ${(err as Error).message}`, { code: (err as { code?: string }).code });
      if (again) setTimeout(() => this.requeue(items, tries + 1), RETRY_MS).unref();
    });
  }

  /** Record a dead message replayed: waiting, due now, attempts reset. */
  replay(id: string, now: number): void {
    this.#writeFinished();
    this.#stmt.replay.run(now, id, this.#ns);
  }

  /** Delete a message's row. */
  discard(id: string): void {
    this.#writeFinished();
    this.#stmt.remove.run(id, this.#ns);
  }

  #errors(id: string): AttemptError[] {
    const text = this.#stmt.errors.get(id, this.#ns) as string | null | undefined;
    return text ? (JSON.parse(text) as AttemptError[]) : [];
  }

  /** Counts per channel and state. */
  counts(now: number): ChannelCounts[] {
    this.flush();
    const byChannel = new Map<string, ChannelCounts>();
    for (const r of this.#stmt.counts.all(now, this.#ns) as { channel: string; state: MessageState; n: number; delayed: number | null }[]) {
      let c = byChannel.get(r.channel);
      if (!c) byChannel.set(r.channel, (c = { channel: r.channel, waiting: 0, delayed: 0, active: 0, completed: 0, cancelled: 0, dead: 0 }));
      c[r.state] += r.n;
      c.delayed += r.delayed ?? 0;
    }
    return [...byChannel.values()].sort((a, b) => a.channel.localeCompare(b.channel));
  }

  /** Messages in one state, newest first. */
  list(query: ListQuery): MessageRecord[] {
    if (!MESSAGE_STATES.includes(query.state)) throw new FerryError("INVALID_OPTION", `state must be one of ${MESSAGE_STATES.join(", ")}`);
    this.flush();
    const limit = query.limit ?? 50;
    const offset = query.offset ?? 0;
    const rows = (query.channel === undefined ? this.#stmt.list.all(this.#ns, query.state, limit, offset) : this.#stmt.listChannel.all(this.#ns, query.state, query.channel, limit, offset)) as Row[];
    return rows.map(toRecord);
  }

  /** One message's record, or null. */
  get(id: string): MessageRecord | null {
    this.flush();
    const row = this.#stmt.get.get(id, this.#ns) as Row | undefined;
    return row ? toRecord(row) : null;
  }

  /** Delete finished rows older than `before`. */
  /** Retention for one finished state (see `retainStep`): one write transaction. Returns records deleted. */
  retain(state: MessageState, count: number, before: number | null, batch: number): number {
    return retainStep(this.#db, this.#stmt.retain, { ns: this.#ns, state }, count, before, batch);
  }

  prune(before: number, states: readonly MessageState[]): number {
    this.#writeFinished();
    return this.#db.transaction(() => {
      let n = 0;
      for (const state of states) if (state !== "waiting" && state !== "active") n += this.#stmt.prune.run(this.#ns, state, before).changes;
      return n;
    }).immediate();
  }

  /** Write what is pending (waiting out another process's write lock), then close the file. Idempotent. */
  async close(): Promise<void> {
    if (!this.#db.open) return;
    await this.wait((s) => s.flush()).catch((err: unknown) => {
      this.#report(`could not write leases or outcomes to the run store before closing it (they are left out of the record): ${(err as Error).message}`, { code: (err as { code?: string }).code });
    });
    if (this.#db.open) this.#db.close();
  }
}

function toRecord(row: Row): MessageRecord {
  const sent = decodeEnvelope(row.envelope);
  const record: MessageRecord = {
    message: { ...sent, attempt: row.attempt, runAt: row.run_at },
    state: row.state,
    errors: row.errors ? (JSON.parse(row.errors) as AttemptError[]) : [],
  };
  if (row.result !== null) record.result = JSON.parse(row.result);
  if (row.started_at !== null) record.startedAt = row.started_at;
  if (row.finished_at !== null) record.finishedAt = row.finished_at;
  return record;
}
