/**
 * Every SQL statement of the SQLite transport, prepared once per connection.
 * Hot paths bind positional parameters (cheaper than named ones).
 *
 * Internal states: 'ready' (due), 'delayed' (runAt in the future when written),
 * 'active', 'completed', 'cancelled', 'dead' (see migrations/001_messages.sql).
 */
import type Database from "better-sqlite3";
import { MAX_ERROR_HISTORY } from "../types.ts";

/** The columns an envelope is rebuilt from, in this order. */
export const ENVELOPE_COLUMNS = "seq, id, v, channel, name, payload, headers, attempt, max_attempts, run_at, priority, dedup_key, created_at";

/** A row holding an envelope's columns. */
export interface EnvelopeRow {
  seq: number;
  id: string;
  v: number;
  channel: string;
  name: string;
  payload: string;
  headers: string;
  attempt: number;
  max_attempts: number;
  run_at: number;
  priority: number;
  dedup_key: string | null;
  created_at: number;
}

/**
 * A row returned by receive, as an array (raw mode, no per-row object keys):
 * the {@link ENVELOPE_COLUMNS} in order, then lease_expires_at.
 */
export type LeasedRow = [
  seq: number,
  id: string,
  v: number,
  channel: string,
  name: string,
  payload: string,
  headers: string,
  attempt: number,
  max_attempts: number,
  run_at: number,
  priority: number,
  dedup_key: string | null,
  created_at: number,
  lease_expires_at: number,
];

/** A full row, for inspection. */
export interface RecordRow extends EnvelopeRow {
  state: string;
  errors: string | null;
  result: string | null;
  started_at: number | null;
  finished_at: number | null;
}

/**
 * Append one error (JSON text in @error) to the capped history: when full, drop
 * the second entry, keeping the first and the newest (as `appendError` does).
 */
const APPEND_ERROR = `CASE
    WHEN @error IS NULL THEN errors
    WHEN json_array_length(coalesce(errors, '[]')) >= ${MAX_ERROR_HISTORY} THEN json_insert(json_remove(errors, '$[1]'), '$[#]', json(@error))
    ELSE json_insert(coalesce(errors, '[]'), '$[#]', json(@error))
  END`;

/** The candidates of one channel, in delivery order: due messages and expired leases. */
const CANDIDATES = `SELECT seq, priority, run_at FROM ferry_messages
  WHERE channel = ? AND state IN ('ready', 'active') AND (state = 'ready' OR lease_expires_at <= ?)
  ORDER BY priority DESC, run_at, seq LIMIT ?`;

/**
 * The receive statement for `n` channels. One UPDATE leases up to `max` due
 * messages (and stalled ones whose lease expired), counts the attempt, issues
 * the batch's token and returns the envelopes.
 *
 * Takes: batch token, leaseExpiresAt, now, then per channel (channel, now, max), then max.
 * Returns: one {@link LeasedRow} per leased message (in no particular order).
 * Each message's token is `<seq>:<batch token>`: unique per lease, and it lets
 * ack, retry, dead-letter and extend find the row by its rowid.
 *
 * Each channel is read through its own ordered index range with its own LIMIT,
 * then the (at most n x max) candidates are merged; `channel IN (...)` with an
 * ORDER BY would sort the whole backlog instead.
 */
export function receiveSql(n: number): string {
  const pick =
    n === 1
      ? CANDIDATES.replace("SELECT seq, priority, run_at", "SELECT seq")
      : `SELECT seq FROM (${Array.from({ length: n }, () => `SELECT * FROM (${CANDIDATES})`).join(" UNION ALL ")})
         ORDER BY priority DESC, run_at, seq LIMIT ?`;
  return `UPDATE ferry_messages
    SET state = 'active', attempt = attempt + 1, token = seq || ':' || ?, lease_expires_at = ?, started_at = ?
    WHERE seq IN (${pick})
    RETURNING ${ENVELOPE_COLUMNS}, lease_expires_at`;
}

/** The prepared statements of one connection. */
export class Statements {
  readonly #db: Database.Database;
  readonly #receive = new Map<number, Database.Statement>();

  /** Store one message. Takes the envelope columns and state; changes 0 on an id or dedup conflict. */
  readonly insert: Database.Statement;
  /** The live holder of a dedupKey. Takes the key; returns its id. */
  readonly dedupHolder: Database.Statement;
  /** Promote due delayed messages of a channel. Takes channel, now. */
  readonly promote: Database.Statement;
  /** Earliest runAt among a channel's delayed messages. Takes channel; returns a number or null. */
  readonly nextDelayed: Database.Statement;
  /** Earliest lease expiry in a channel. Takes channel; returns a number or null. */
  readonly nextLeaseExpiry: Database.Statement;
  /** Paused channels. Returns channel names. */
  readonly pausedList: Database.Statement;
  /** Complete or cancel. Takes state, result JSON, now, seq, token, id. */
  readonly ack: Database.Statement;
  /** Complete or cancel by deleting the row (retention keeps no completed records). Takes seq, token, id. */
  readonly ackDelete: Database.Statement;
  /** Back to waiting at a time. Named: state, runAt, used (0/1), error JSON, seq, token, id. */
  readonly retry: Database.Statement;
  /** Into the dead-letter store. Named: now, error JSON, seq, token, id. */
  readonly dead: Database.Statement;
  /** Extend a lease. Takes leaseExpiresAt, seq, token, id. */
  readonly extend: Database.Statement;

  constructor(db: Database.Database) {
    this.#db = db;
    this.insert = db.prepare(`INSERT INTO ferry_messages
      (id, v, channel, name, payload, headers, max_attempts, run_at, priority, dedup_key, dedup_claim, created_at, state)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`);
    this.dedupHolder = db.prepare(`SELECT id FROM ferry_messages WHERE dedup_claim = ?`).pluck();
    this.promote = db.prepare(`UPDATE ferry_messages SET state = 'ready' WHERE channel = ? AND state = 'delayed' AND run_at <= ?`);
    this.nextDelayed = db.prepare(`SELECT min(run_at) FROM ferry_messages WHERE channel = ? AND state = 'delayed'`).pluck();
    this.nextLeaseExpiry = db
      .prepare(`SELECT min(lease_expires_at) FROM ferry_messages INDEXED BY ferry_messages_receive
        WHERE channel = ? AND state IN ('ready', 'active') AND state = 'active'`)
      .pluck();
    this.pausedList = db.prepare(`SELECT channel FROM ferry_paused_channels`).pluck();
    this.ack = db.prepare(`UPDATE ferry_messages
      SET state = ?, result = ?, finished_at = ?, token = NULL, lease_expires_at = NULL, dedup_claim = NULL
      WHERE seq = ? AND token = ? AND id = ? AND state = 'active'`);
    this.ackDelete = db.prepare(`DELETE FROM ferry_messages WHERE seq = ? AND token = ? AND id = ? AND state = 'active'`);
    this.retry = db.prepare(`UPDATE ferry_messages
      SET state = @state, run_at = @runAt, token = NULL, lease_expires_at = NULL,
        attempt = CASE WHEN @used THEN attempt ELSE max(0, attempt - 1) END,
        errors = ${APPEND_ERROR}
      WHERE seq = @seq AND token = @token AND id = @id AND state = 'active'`);
    this.dead = db.prepare(`UPDATE ferry_messages
      SET state = 'dead', finished_at = @now, token = NULL, lease_expires_at = NULL, dedup_claim = NULL,
        errors = ${APPEND_ERROR}
      WHERE seq = @seq AND token = @token AND id = @id AND state = 'active'`);
    this.extend = db.prepare(`UPDATE ferry_messages SET lease_expires_at = ? WHERE seq = ? AND token = ? AND id = ? AND state = 'active'`);
  }

  /** The receive statement for `n` channels (see {@link receiveSql}), prepared on first use. */
  receive(n: number): Database.Statement {
    let s = this.#receive.get(n);
    if (!s) this.#receive.set(n, (s = this.#db.prepare(receiveSql(n)).raw(true)));
    return s;
  }
}
