/**
 * The run store: what RabbitMQ cannot answer (a message's state, attempts,
 * errors and result; counts per state; listing; live dedup keys), kept in a
 * small SQLite file beside the broker. One row per message: inserted at send,
 * updated when leased and when finished, each batch in one transaction.
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
import { appendError, MESSAGE_STATES, type AttemptError, type ChannelCounts, type ListQuery, type MessageRecord, type MessageState } from "../types.ts";

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

/** A finished message. */
export interface FinishItem {
  id: string;
  state: "completed" | "cancelled" | "dead";
  result?: unknown;
  error?: AttemptError;
}

/** SQLite record of every message's run, scoped to one transport prefix. */
export class RunStore {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #ns: string;
  readonly #stmt;

  /** Open (and create) the store at `path`, for queues under prefix `ns`. */
  constructor(path: string, ns: string) {
    this.path = path;
    this.#ns = ns;
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    try {
      this.#db = new Database(path);
      this.#db.pragma("journal_mode = WAL");
      this.#db.pragma("synchronous = NORMAL");
      this.#db.pragma("busy_timeout = 5000");
      this.#db.exec(SCHEMA);
    } catch (err) {
      throw new FerryError("TRANSPORT_UNAVAILABLE", `cannot open the AMQP run store at ${JSON.stringify(path)}: ${(err as Error).message}; set ?runStore= to a writable file or ?runStore=off`, { cause: err });
    }
    const db = this.#db;
    this.#stmt = {
      insert: db.prepare(`INSERT OR IGNORE INTO ferry_amqp_runs (id, ns, channel, state, envelope, run_at, dedup_key) VALUES (?, ?, ?, 'waiting', ?, ?, ?)`),
      exists: db.prepare(`SELECT 1 FROM ferry_amqp_runs WHERE id = ?`).pluck(),
      liveKey: db.prepare(`SELECT id FROM ferry_amqp_runs WHERE ns = ? AND dedup_key = ? AND state IN ('waiting', 'active')`).pluck(),
      remove: db.prepare(`DELETE FROM ferry_amqp_runs WHERE id = ? AND ns = ?`),
      start: db.prepare(`UPDATE ferry_amqp_runs SET state = 'active', attempt = attempt + 1, started_at = ? WHERE id = ? AND ns = ? AND state IN ('waiting', 'active') RETURNING attempt`).pluck(),
      finish: db.prepare(`UPDATE ferry_amqp_runs SET state = ?, result = ?, finished_at = ? WHERE id = ? AND ns = ?`),
      errors: db.prepare(`SELECT errors FROM ferry_amqp_runs WHERE id = ? AND ns = ?`).pluck(),
      dead: db.prepare(`UPDATE ferry_amqp_runs SET state = 'dead', errors = ?, finished_at = ? WHERE id = ? AND ns = ?`),
      retry: db.prepare(`UPDATE ferry_amqp_runs SET state = 'waiting', run_at = ?, attempt = MAX(0, attempt - ?), errors = ? WHERE id = ? AND ns = ?`),
      requeue: db.prepare(`UPDATE ferry_amqp_runs SET state = 'waiting' WHERE id = ? AND ns = ? AND state = 'active'`),
      replay: db.prepare(`UPDATE ferry_amqp_runs SET state = 'waiting', attempt = 0, run_at = ?, finished_at = NULL WHERE id = ? AND ns = ?`),
      get: db.prepare(`SELECT * FROM ferry_amqp_runs WHERE id = ? AND ns = ?`),
      counts: db.prepare(`SELECT channel, state, COUNT(*) AS n, SUM(state = 'waiting' AND run_at > ?) AS delayed FROM ferry_amqp_runs WHERE ns = ? GROUP BY channel, state`),
      list: db.prepare(`SELECT * FROM ferry_amqp_runs WHERE ns = ? AND state = ? ORDER BY rowid DESC LIMIT ? OFFSET ?`),
      listChannel: db.prepare(`SELECT * FROM ferry_amqp_runs WHERE ns = ? AND state = ? AND channel = ? ORDER BY rowid DESC LIMIT ? OFFSET ?`),
      prune: db.prepare(`DELETE FROM ferry_amqp_runs WHERE ns = ? AND state = ? AND finished_at < ?`),
    };
  }

  /** Record new messages; a known id or a live dedupKey is reported as deduplicated. */
  insert(messages: readonly Envelope[], bodies: readonly string[]): StoredReceipt[] {
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
    )();
  }

  /** Forget rows of a send that failed, so that a retried send is not taken for a duplicate. */
  remove(ids: readonly string[]): void {
    this.#db.transaction(() => {
      for (const id of ids) this.#stmt.remove.run(id, this.#ns);
    })();
  }

  /** Mark messages leased; returns each one's attempt number (undefined when it has no row). */
  start(ids: readonly string[], now: number): (number | undefined)[] {
    return this.#db.transaction(() => ids.map((id) => this.#stmt.start.get(now, id, this.#ns) as number | undefined))();
  }

  /** Record completions, cancellations and dead letters. */
  finish(items: readonly FinishItem[], now: number): void {
    const s = this.#stmt;
    this.#db.transaction(() => {
      for (const item of items) {
        if (item.state === "dead") {
          const errors = this.#errors(item.id);
          s.dead.run(JSON.stringify(item.error ? appendError(errors, item.error) : errors), now, item.id, this.#ns);
        } else {
          s.finish.run(item.state, item.result === undefined ? null : JSON.stringify(item.result), now, item.id, this.#ns);
        }
      }
    })();
  }

  /** Record messages put back to waiting, due at `runAt`. */
  retry(items: readonly { id: string; runAt: number; attemptUsed: boolean; error?: AttemptError | undefined }[]): void {
    this.#db.transaction(() => {
      for (const item of items) {
        const errors = this.#errors(item.id);
        this.#stmt.retry.run(item.runAt, item.attemptUsed ? 0 : 1, JSON.stringify(item.error ? appendError(errors, item.error) : errors), item.id, this.#ns);
      }
    })();
  }

  /** Record leases that ended without an outcome (expired, connection lost, closed). */
  requeue(ids: readonly string[]): void {
    if (ids.length === 0) return;
    this.#db.transaction(() => {
      for (const id of ids) this.#stmt.requeue.run(id, this.#ns);
    })();
  }

  /** Record a dead message replayed: waiting, due now, attempts reset. */
  replay(id: string, now: number): void {
    this.#stmt.replay.run(now, id, this.#ns);
  }

  /** Delete a message's row. */
  discard(id: string): void {
    this.#stmt.remove.run(id, this.#ns);
  }

  #errors(id: string): AttemptError[] {
    const text = this.#stmt.errors.get(id, this.#ns) as string | null | undefined;
    return text ? (JSON.parse(text) as AttemptError[]) : [];
  }

  /** Counts per channel and state. */
  counts(now: number): ChannelCounts[] {
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
    const limit = query.limit ?? 50;
    const offset = query.offset ?? 0;
    const rows = (query.channel === undefined ? this.#stmt.list.all(this.#ns, query.state, limit, offset) : this.#stmt.listChannel.all(this.#ns, query.state, query.channel, limit, offset)) as Row[];
    return rows.map(toRecord);
  }

  /** One message's record, or null. */
  get(id: string): MessageRecord | null {
    const row = this.#stmt.get.get(id, this.#ns) as Row | undefined;
    return row ? toRecord(row) : null;
  }

  /** Delete finished rows older than `before`. */
  prune(before: number, states: readonly MessageState[]): number {
    return this.#db.transaction(() => {
      let n = 0;
      for (const state of states) if (state !== "waiting" && state !== "active") n += this.#stmt.prune.run(this.#ns, state, before).changes;
      return n;
    })();
  }

  /** Close the file. Idempotent. */
  close(): void {
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
