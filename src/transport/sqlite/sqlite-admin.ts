/**
 * Inspection and administration of the SQLite store: counts, listing, one
 * record, dead-letter replay and discard, pruning, pause and resume. These are
 * not on the hot path; statements are prepared on first use.
 */
import type Database from "better-sqlite3";
import { assertChannel } from "../../core/names.ts";
import { FerryError } from "../../core/errors.ts";
import { MESSAGE_STATES, type ChannelCounts, type ListQuery, type MessageRecord, type MessageState } from "../types.ts";
import { ENVELOPE_COLUMNS, type RecordRow } from "./sqlite-statements.ts";
import { internalStates, rowToRecord } from "./sqlite-rows.ts";

const RECORD_COLUMNS = `${ENVELOPE_COLUMNS}, state, errors, result, started_at, finished_at`;
/** The finished index's predicate, word for word: SQLite uses a partial index only for a query that repeats it. */
const FINISHED = "state IN ('completed', 'cancelled', 'dead')";

/**
 * Retention's statements (named parameters), each read through the finished index: the
 * channels holding @state, a channel's count edge (the newest row past the newest
 * @count), and the deletion among a channel's @batch oldest.
 */
export const RETAIN_SQL = {
  channels: `
    WITH RECURSIVE chs(ch) AS (
      SELECT min(channel) FROM ferry_messages WHERE state = @state AND ${FINISHED}
      UNION ALL
      SELECT (SELECT min(channel) FROM ferry_messages WHERE state = @state AND ${FINISHED} AND channel > chs.ch) FROM chs WHERE chs.ch IS NOT NULL
    ) SELECT ch FROM chs WHERE ch IS NOT NULL`,
  edge: `SELECT seq FROM ferry_messages WHERE state = @state AND ${FINISHED} AND channel = @ch ORDER BY seq DESC LIMIT 1 OFFSET @count`,
  doom: `
    DELETE FROM ferry_messages WHERE seq IN (
      SELECT seq FROM ferry_messages WHERE state = @state AND ${FINISHED} AND channel = @ch ORDER BY seq LIMIT @batch
    ) AND (seq <= @last OR finished_at < @before)`,
} as const;

interface CountRow {
  channel: string;
  state: string;
  n: number;
  delayed: number;
}

/**
 * Retention's statements over one table (named parameters): the channels holding
 * @state, a channel's count edge (the newest row past the newest @count), and the
 * deletion among a channel's @batch oldest of the rows past @last or finished before @before.
 */
export interface RetainStatements {
  channels: Database.Statement;
  edge: Database.Statement;
  doom: Database.Statement;
}

/**
 * One retention step in one write transaction: in each channel holding `scope.state`,
 * of its `batch` oldest rows (by arrival), delete those past the newest `count` (< 0: no
 * limit) or finished before `before` (null: no limit). `scope` holds the named
 * parameters that choose the rows besides the channel (the state; the run store's
 * prefix too). Returns rows deleted.
 */
export function retainStep(db: Database.Database, st: RetainStatements, scope: Record<string, unknown>, count: number, before: number | null, batch: number): number {
  return db
    .transaction(() => {
      let n = 0;
      for (const ch of st.channels.pluck().all(scope) as string[]) {
        const last = count < 0 ? undefined : (st.edge.pluck().get({ ...scope, ch, count }) as number | undefined);
        n += st.doom.run({ ...scope, ch, batch, last: last ?? -1, before }).changes;
      }
      return n;
    })
    .immediate();
}

/** Read-only and admin queries over one connection. */
export class SqliteAdmin {
  readonly #db: Database.Database;
  readonly #cache = new Map<string, Database.Statement>();

  constructor(db: Database.Database) {
    this.#db = db;
  }

  #stmt(sql: string): Database.Statement {
    let s = this.#cache.get(sql);
    if (!s) this.#cache.set(sql, (s = this.#db.prepare(sql)));
    return s;
  }

  /** Counts by channel and state; `delayed` counts waiting messages due after `now`. Reads the whole table. */
  counts(now: number): ChannelCounts[] {
    const rows = this.#stmt(
      `SELECT channel, state, count(*) AS n, sum(state IN ('ready', 'delayed') AND run_at > ?) AS delayed
       FROM ferry_messages GROUP BY channel, state`,
    ).all(now) as CountRow[];
    const byChannel = new Map<string, ChannelCounts>();
    for (const r of rows) {
      let c = byChannel.get(r.channel);
      if (!c) byChannel.set(r.channel, (c = { channel: r.channel, waiting: 0, delayed: 0, active: 0, completed: 0, cancelled: 0, dead: 0 }));
      if (r.state === "ready" || r.state === "delayed") {
        c.waiting += r.n;
        c.delayed += r.delayed;
      } else c[r.state as Exclude<MessageState, "waiting">] += r.n;
    }
    return [...byChannel.values()].sort((a, b) => a.channel.localeCompare(b.channel));
  }

  /** Messages in one state, newest first. */
  list(query: ListQuery): MessageRecord[] {
    if (!MESSAGE_STATES.includes(query.state)) throw new FerryError("INVALID_OPTION", `state must be one of ${MESSAGE_STATES.join(", ")}`, { details: { option: "state" } });
    const limit = query.limit ?? 50;
    const offset = query.offset ?? 0;
    if (!Number.isInteger(limit) || limit < 0 || !Number.isInteger(offset) || offset < 0) {
      throw new FerryError("INVALID_OPTION", "limit and offset must be whole numbers >= 0", { details: { option: "limit" } });
    }
    const states = internalStates(query.state);
    const finished = query.state === "completed" || query.state === "cancelled" || query.state === "dead";
    const where = `state IN (${states.map(() => "?").join(", ")})${finished ? ` AND ${FINISHED}` : ""}${query.channel === undefined ? "" : " AND channel = ?"}`;
    const params: unknown[] = [...states];
    if (query.channel !== undefined) params.push(query.channel);
    const rows = this.#stmt(`SELECT ${RECORD_COLUMNS} FROM ferry_messages WHERE ${where} ORDER BY seq DESC LIMIT ? OFFSET ?`).all(...params, limit, offset) as RecordRow[];
    return rows.map(rowToRecord);
  }

  /** One message with its run record, or null. */
  get(id: string): MessageRecord | null {
    const row = this.#stmt(`SELECT ${RECORD_COLUMNS} FROM ferry_messages WHERE id = ?`).get(id) as RecordRow | undefined;
    return row ? rowToRecord(row) : null;
  }

  /**
   * Dead messages back to waiting, due `now`, attempts reset. A message claims
   * its dedupKey again only if no live message holds it.
   */
  replay(ids: readonly string[], now: number): string[] {
    const stmt = this.#stmt(`UPDATE ferry_messages
      SET state = 'ready', attempt = 0, run_at = ?, finished_at = NULL, token = NULL, lease_expires_at = NULL,
        dedup_claim = CASE WHEN dedup_key IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ferry_messages h WHERE h.dedup_claim = ferry_messages.dedup_key)
          THEN dedup_key END
      WHERE id = ? AND state = 'dead'`);
    return this.#db.transaction(() => ids.filter((id) => stmt.run(now, id).changes === 1)).immediate();
  }

  /** Delete dead messages for good. */
  discard(ids: readonly string[]): string[] {
    const stmt = this.#stmt(`DELETE FROM ferry_messages WHERE id = ? AND state = 'dead'`);
    return this.#db.transaction(() => ids.filter((id) => stmt.run(id).changes === 1)).immediate();
  }

  /** Delete finished messages (completed and cancelled by default) finished before `before`. Live states are never pruned. */
  prune(before: number, states: readonly MessageState[] = ["completed", "cancelled"]): number {
    const terminal = states.filter((s) => s === "completed" || s === "cancelled" || s === "dead");
    if (terminal.length === 0) return 0;
    const sql = `DELETE FROM ferry_messages WHERE state IN (${terminal.map(() => "?").join(", ")}) AND coalesce(finished_at, 0) < ?`;
    return this.#stmt(sql).run(...terminal, before).changes;
  }

  /** Retention for one finished state (see {@link retainStep}): one write transaction. Returns rows deleted. */
  retain(state: MessageState, count: number, before: number | null, batch: number): number {
    const st = { channels: this.#stmt(RETAIN_SQL.channels), edge: this.#stmt(RETAIN_SQL.edge), doom: this.#stmt(RETAIN_SQL.doom) };
    return retainStep(this.#db, st, { state }, count, before, batch);
  }

  /** Pause a channel (idempotent). */
  pause(channel: string, now: number): void {
    this.#stmt(`INSERT INTO ferry_paused_channels (channel, paused_at) VALUES (?, ?) ON CONFLICT DO NOTHING`).run(assertChannel(channel), now);
  }

  /** Resume a channel (idempotent). */
  resume(channel: string): void {
    this.#stmt(`DELETE FROM ferry_paused_channels WHERE channel = ?`).run(assertChannel(channel));
  }

  /** The paused channels, sorted. */
  paused(): string[] {
    return this.#stmt(`SELECT channel FROM ferry_paused_channels ORDER BY channel`).pluck().all() as string[];
  }
}
