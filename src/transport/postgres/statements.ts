/**
 * Every SQL statement the PostgreSQL transport runs, built once per schema as
 * named (prepared) statements. The schema is the only interpolated text, and it
 * is checked by `quoteSchema` first; every value is a parameter. Batches travel
 * as one JSON parameter read with `json_to_recordset`, so a batch of K is one
 * round trip and one `JSON.stringify`.
 *
 * Fencing is by token alone: receive, ack, retry, dead-letter and release each
 * raise the row's token ({@link LEASE_TOKEN} for a receive), so a token handed out by a receive matches the row only while
 * that lease is current (the row is active). Leaving `state = 'active'` out of
 * these updates also keeps the planner off the partial receive index, whose
 * predicate it would imply. Fenced updates also take the ids as an
 * array, which pins the plan to primary-key lookups whatever the statistics say
 * (a hash join over the table, or a walk of dead index entries, costs O(table)).
 *
 * Times are ms since the epoch by the database clock ({@link NOW_MS}).
 */
import { createHash } from "node:crypto";

/** The database's now, in ms since the epoch (stable within a statement, so index-friendly). */
export const NOW_MS = "(date_part('epoch', now()) * 1000)";

const LIVE = "state IN ('waiting', 'active')";

/**
 * Leases and acks commit without waiting for their WAL flush (their own transaction
 * only). A lease is on the critical path of every message. An ack that returns
 * sooner lets the worker send the next one sooner: finished runs spend less time
 * queued behind an ack in flight, and those are what a killed worker's runs repeat
 * beyond its running ones (R1 on PostgreSQL went from 6-12 to 0.6-3.4 re-runs per
 * kill, at the same throughput). A server crash may undo what committed in its last
 * few hundred ms (3 x wal_writer_delay at most; any later durable commit, such as a
 * send or a reply, flushes everything before it): a lost lease makes its message due
 * again, a lost ack makes it run again (at-least-once), and a message on its last
 * attempt whose ack and not its lease was lost is dead-lettered as never finished,
 * where a replay brings it back. Retry, dead-letter and send keep the durable commit.
 */
const ASYNC_COMMIT = "set_config('synchronous_commit', 'off', true) IS NOT NULL";

/**
 * A lease's token: one more than the last, and at least the database clock in
 * microseconds, so a token lost with a lease in a server crash is never issued
 * again after it (unless the clock went back across the crash).
 */
const LEASE_TOKEN = "greatest(m.token + 1, (date_part('epoch', now()) * 1000000)::bigint)";
const FINISHED = "state IN ('completed', 'cancelled', 'dead')";

/** Columns that rebuild an envelope. */
const ENVELOPE_COLUMNS = "m.id, m.name, m.channel, m.payload, m.headers, m.attempt, m.max_attempts, m.run_at, m.priority, m.dedup_key, m.created_at";

/** Columns of a run record. */
const RECORD_COLUMNS = `${ENVELOPE_COLUMNS}, m.state, m.errors, m.result, (m.result IS NOT NULL) AS has_result, m.started_at, m.finished_at`;

/** A named statement: `pg` prepares it once per connection. */
export interface Statement {
  name: string;
  text: string;
}

/** All statements of one schema. */
export type Statements = ReturnType<typeof buildStatements>;

/** Build the statements of a schema. `q` is the quoted schema name from `quoteSchema`. */
export function buildStatements(q: string) {
  const tag = createHash("sha1").update(q).digest("hex").slice(0, 10);
  const st = (name: string, text: string): Statement => ({ name: `ferry_${tag}_${name}`, text: text.replace(/\s+/g, " ").trim() });
  const t = `${q}.messages`;

  // Loose index scan over the distinct priorities of live rows in each channel,
  // highest first: a few index descents however large the backlog, so that
  // not-yet-due rows (delayed messages, running leases) are never walked.
  const prioritiesOf = (channels: string) => `
    pr AS (
      SELECT c.ch, (SELECT priority FROM ${t} WHERE channel = c.ch AND ${LIVE} ORDER BY priority DESC LIMIT 1) AS p
      FROM ${channels} WHERE NOT EXISTS (SELECT 1 FROM ${q}.paused z WHERE z.channel = c.ch)
      UNION ALL
      SELECT pr.ch, (SELECT priority FROM ${t} WHERE channel = pr.ch AND ${LIVE} AND priority < pr.p ORDER BY priority DESC LIMIT 1)
      FROM pr WHERE pr.p IS NOT NULL
    )`;

  const dueIn = `(SELECT id, priority, due_at, seq FROM ${t}
      WHERE channel = pr.ch AND ${LIVE} AND priority = pr.p AND due_at <= ${NOW_MS}
      ORDER BY due_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED) x`;

  // Run records in state $1 of every channel, newest first: a loose index scan over the
  // channels with rows matching `where` (an index's predicate, and its leading columns),
  // then the newest $2 limit + $3 offset of each channel in `states`.
  const everyChannel = (where: string, states: string) => `
    WITH RECURSIVE chs AS (
      (SELECT channel FROM ${t} WHERE ${where} ORDER BY channel LIMIT 1)
      UNION ALL
      SELECT (SELECT channel FROM ${t} WHERE ${where} AND channel > chs.channel ORDER BY channel LIMIT 1)
      FROM chs WHERE chs.channel IS NOT NULL
    )
    SELECT m.* FROM chs CROSS JOIN LATERAL (
      SELECT ${RECORD_COLUMNS}, m.seq FROM ${t} m
      WHERE m.state = $1 AND m.${states} AND m.channel = chs.channel ORDER BY m.seq DESC LIMIT $2::int + $3::int
    ) m
    WHERE chs.channel IS NOT NULL ORDER BY m.seq DESC LIMIT $2 OFFSET $3`;

  const leaseReturning = `RETURNING ${ENVELOPE_COLUMNS}, m.token::text AS token, m.due_at, picked.was_due, picked.seq`;
  const leaseSet = `SET state = 'active', token = ${LEASE_TOKEN}, attempt = m.attempt + 1,
        due_at = ${NOW_MS} + $3, started_at = ${NOW_MS}`;

  // The rows picked, found by primary key. The ids also go in as an array (as the fenced
  // updates take theirs) so that the plan is primary-key lookups even where the planner
  // cannot see how many were picked: the lease runs with generic plans (LEASE_SESSION in
  // postgres-transport.ts), whose guess for `LIMIT $2` is a tenth of the table, and which
  // would otherwise hash-join the whole table (475 ms on 1,000,000 rows).
  const leaseFrom = (picked: string) => `FROM ${picked} WHERE m.id = ANY(ARRAY(SELECT id FROM ${picked})) AND m.id = picked.id`;

  // The lease alone.
  const leaseUpdate = (picked: string) => `
    UPDATE ${t} m ${leaseSet}
    ${leaseFrom(picked)}
    ${leaseReturning}`;

  // The lease, then one row per leased message carrying `wait`: when the statement
  // took fewer than $2, the ms until the next live row not leased here is due (may be
  // <= 0: due rows other receivers hold; Infinity: none), else null. No row was
  // leased: a single row, every column null but `wait`. Where leases are planned per run
  // (on a pool given by the caller), planning it costs more than the lease alone (about
  // 0.2 ms a run), so it is used only where leases come back short, as at a trickle.
  const leaseUpdateWithWait = (picked: string) => `,
    leased AS (
      UPDATE ${t} m ${leaseSet}
      ${leaseFrom(picked)}
      ${leaseReturning}
    ),
    nd AS (
      SELECT CASE WHEN (SELECT count(*) FROM ${picked}) < $2 THEN coalesce((
        SELECT min((SELECT due_at FROM ${t} WHERE channel = pr.ch AND ${LIVE} AND priority = pr.p
          AND id <> ALL (ARRAY(SELECT id FROM ${picked})) ORDER BY due_at LIMIT 1))
        FROM pr WHERE pr.p IS NOT NULL) - ${NOW_MS}, 'Infinity'::float8) END AS wait
    )
    SELECT l.*, nd.wait FROM nd LEFT JOIN leased l ON true`;

  const pickOne = `
      WITH RECURSIVE ${prioritiesOf("(SELECT $1::text AS ch) c")},
      picked AS (
        SELECT x.id, x.due_at AS was_due, x.seq FROM pr CROSS JOIN LATERAL ${dueIn}
        WHERE pr.p IS NOT NULL AND ${ASYNC_COMMIT} LIMIT $2
      )`;
  const pickMany = `
      WITH RECURSIVE ${prioritiesOf("unnest($1::text[]) AS c(ch)")},
      picked AS (
        SELECT x.id, x.due_at AS was_due, x.seq FROM pr CROSS JOIN LATERAL ${dueIn}
        WHERE pr.p IS NOT NULL AND ${ASYNC_COMMIT} ORDER BY x.priority DESC, x.due_at, x.seq LIMIT $2
      )`;

  return {
    /**
     * Send a batch. $1 json: array of envelopes; an envelope may carry its payload and
     * headers as JSON text in `p` and `h` instead (for text json_to_recordset cannot
     * unescape: U+0000, lone surrogates). Returns: `id`, `channel` of each row inserted;
     * rows whose id exists, or whose dedupKey a live row holds, are skipped.
     * The insert trigger NOTIFYs receivers (unless the session set ferry.notify = off).
     */
    send: st("send", `
      INSERT INTO ${t} (id, channel, name, payload, headers, priority, max_attempts, run_at, due_at, dedup_key, created_at)
      SELECT x.id, x.channel, x.name, coalesce(x.p::json, x.payload, 'null'::json), coalesce(x.h::json, x.headers, '{}'::json), x.priority,
        x."maxAttempts", x."runAt", x."runAt", x."dedupKey", x."createdAt"
      FROM json_to_recordset($1::json) AS x(id text, channel text, name text, payload json, headers json, p text, h text,
        priority smallint, "maxAttempts" integer, "runAt" float8, "dedupKey" text, "createdAt" float8)
      ON CONFLICT DO NOTHING
      RETURNING id, channel`),

    /** Wake receivers after commit. $1 text: notify channel, $2 text[]: Ferry channels. */
    notify: st("notify", `SELECT pg_notify($1, c) FROM unnest($2::text[]) AS c`),

    /** Who holds these dedup keys. $1 text[]: keys. Returns: `dedup_key`, `id`, `live`, newest first. */
    dedupHolders: st("dedup_holders", `
      SELECT dedup_key, id, ${LIVE} AS live FROM ${t} WHERE dedup_key = ANY($1::text[]) ORDER BY ${LIVE} DESC, seq DESC`),

    /**
     * Lease from one channel. $1 text: channel, $2 int: max, $3 float8: lease ms.
     * Takes due waiting rows and expired leases (stalled recovery), highest
     * priority first, then oldest due; skips rows other receivers hold.
     * Returns: envelope columns, `token`, `due_at` (lease expiry), `was_due`, `seq`.
     */
    receiveOne: st("receive_one", `${pickOne}${leaseUpdate("picked")}`),

    /** Lease from several channels: as `receiveOne`, but $1 text[]: channels. */
    receiveMany: st("receive_many", `${pickMany}${leaseUpdate("picked")}`),

    /**
     * As `receiveOne`, and each row also carries `wait` (see leaseUpdateWithWait: when
     * fewer than $2 were leased, the ms until the next live row is due); no lease: one
     * row of nulls but `wait`.
     */
    receiveOneWait: st("receive_one_wait", `${pickOne}${leaseUpdateWithWait("picked")}`),

    /** As `receiveMany`, with `wait` as `receiveOneWait`. */
    receiveManyWait: st("receive_many_wait", `${pickMany}${leaseUpdateWithWait("picked")}`),

    /** Complete leases. $1 json: [{id, token, status, result (JSON text)}], $2 text[]: the same ids. Returns: `id` of each row completed. */
    ack: st("ack", `
      UPDATE ${t} m SET state = x.status, token = m.token + 1, result = x.result::json, finished_at = ${NOW_MS}
      FROM json_to_recordset($1::json) AS x(id text, token bigint, status text, result text)
      WHERE m.id = ANY($2::text[]) AND m.id = x.id AND m.token = x.token AND ${ASYNC_COMMIT}
      RETURNING m.id`),

    /**
     * Return leases to waiting. $1 json: [{id, token, runAt, used, error}], $2 int: error
     * history cap, $3 text[]: the same ids. Returns: `id`, `channel` of each row moved. The update trigger NOTIFYs receivers (as `send`).
     */
    retry: st("retry", `
      UPDATE ${t} m SET state = 'waiting', token = m.token + 1, run_at = x."runAt", due_at = x."runAt",
        attempt = CASE WHEN x.used THEN m.attempt ELSE greatest(m.attempt - 1, 0) END,
        errors = CASE WHEN x.error IS NULL THEN m.errors ELSE ${q}.append_error(m.errors, x.error, $2) END
      FROM json_to_recordset($1::json) AS x(id text, token bigint, "runAt" float8, used boolean, error jsonb)
      WHERE m.id = ANY($3::text[]) AND m.id = x.id AND m.token = x.token
      RETURNING m.id, m.channel`),

    /** Dead-letter leases. $1 json: [{id, token, error}], $2 int: history cap, $3 text[]: the same ids. Returns: `id` of each row moved. */
    deadLetter: st("dead_letter", `
      UPDATE ${t} m SET state = 'dead', token = m.token + 1, finished_at = ${NOW_MS}, errors = ${q}.append_error(m.errors, x.error, $2)
      FROM json_to_recordset($1::json) AS x(id text, token bigint, error jsonb)
      WHERE m.id = ANY($3::text[]) AND m.id = x.id AND m.token = x.token
      RETURNING m.id`),

    /** Extend leases. $1 text[]: ids, $2 bigint[]: tokens, $3 float8: lease ms. Returns: `id` of each lease extended. */
    extend: st("extend", `
      UPDATE ${t} m SET due_at = ${NOW_MS} + $3
      FROM unnest($1::text[], $2::bigint[]) AS x(id, token)
      WHERE m.id = ANY($1::text[]) AND m.id = x.id AND m.token = x.token
      RETURNING m.id`),

    /**
     * Give back leases never handed to a handler (read-ahead): waiting again, due as
     * before the lease, no attempt used. $1 text[]: ids, $2 bigint[]: tokens.
     * Returns: `id`, `channel` of each row released. The update trigger NOTIFYs (as `send`).
     */
    release: st("release", `
      UPDATE ${t} m SET state = 'waiting', token = m.token + 1, due_at = m.run_at, attempt = greatest(m.attempt - 1, 0),
        started_at = CASE WHEN m.attempt <= 1 THEN NULL ELSE m.started_at END
      FROM unnest($1::text[], $2::bigint[]) AS x(id, token)
      WHERE m.id = ANY($1::text[]) AND m.id = x.id AND m.token = x.token
      RETURNING m.id, m.channel`),

    /**
     * Counts by channel and state. Returns: `channel`, `state`, `n`, `delayed`. Live rows
     * are counted from the receive index (state included; a waiting row's due_at is its
     * run_at), finished rows from the finished index: index-only scans, never the heap's
     * payloads.
     */
    counts: st("counts", `
      SELECT channel, state, count(*)::int AS n, count(*) FILTER (WHERE state = 'waiting' AND due_at > ${NOW_MS})::int AS delayed
      FROM ${t} WHERE ${LIVE} GROUP BY channel, state
      UNION ALL
      SELECT channel, state, count(*)::int AS n, 0 AS delayed
      FROM ${t} WHERE ${FINISHED} GROUP BY state, channel`),

    /** Finished run records of one channel in a state, newest first. $1 state, $2 channel, $3 limit, $4 offset. */
    listFinished: st("list_finished", `
      SELECT ${RECORD_COLUMNS} FROM ${t} m
      WHERE m.state = $1 AND m.${FINISHED} AND m.channel = $2 ORDER BY m.seq DESC LIMIT $3 OFFSET $4`),

    /**
     * Finished run records of every channel in a state, newest first. $1 state, $2 limit,
     * $3 offset. A loose index scan finds the channels holding that state, then takes the
     * newest limit + offset of each: (channels x page) index entries, however many rows.
     */
    listFinishedAll: st("list_finished_all", everyChannel(`state = $1 AND ${FINISHED}`, FINISHED)),

    /**
     * Live run records (waiting or active) of one channel, newest first; as `listFinished`.
     * Read through the receive index, so only the channel's live rows are visited (not
     * indexed by seq, which would cost every receive a write).
     */
    listLive: st("list_live", `
      SELECT ${RECORD_COLUMNS} FROM ${t} m
      WHERE m.state = $1 AND m.${LIVE} AND m.channel = $2 ORDER BY m.seq DESC LIMIT $3 OFFSET $4`),

    /** Live run records of every channel; as `listFinishedAll`, the channels found in the receive index. */
    listLiveAll: st("list_live_all", everyChannel(LIVE, LIVE)),

    /** One run record. $1 id. */
    get: st("get", `SELECT ${RECORD_COLUMNS} FROM ${t} m WHERE m.id = $1`),

    /**
     * Dead rows back to waiting, due now, attempts reset. $1 text[]: ids. A row whose
     * dedup key another live row now holds loses its key (a unique index allows one
     * live holder). Returns: `id`, `channel` of each row moved. The update trigger NOTIFYs (as `send`).
     */
    replay: st("replay", `
      UPDATE ${t} m SET state = 'waiting', attempt = 0, run_at = ${NOW_MS}, due_at = ${NOW_MS}, finished_at = NULL,
        dedup_key = CASE WHEN m.dedup_key IS NOT NULL AND EXISTS (
          SELECT 1 FROM ${t} o WHERE o.dedup_key = m.dedup_key AND o.${LIVE}) THEN NULL ELSE m.dedup_key END
      WHERE m.id = ANY($1::text[]) AND m.state = 'dead'
      RETURNING m.id, m.channel`),

    /** Delete dead rows. $1 text[]: ids. Returns: `id` of each row deleted. */
    discard: st("discard", `DELETE FROM ${t} WHERE id = ANY($1::text[]) AND state = 'dead' RETURNING id`),

    /**
     * Retention, for one finished state $1 text: in each channel holding that state, of its
     * $4 int oldest rows (by arrival), delete those past the newest $2 int ($2 < 0: no count
     * limit) or finished more than $3 float8 ms ago by the database clock (null: no age
     * limit). Runs only when it takes the advisory lock `hashtext($5 text)` (one pruner per
     * schema at a time; others skip). A loose
     * index scan finds the channels; each channel costs an index walk of $2 entries for
     * its count edge and of $4 rows for its oldest, however large the table. (The edge's
     * `OFFSET 0` keeps it a subquery run once per channel: pulled up into the join, the
     * planner ran it once per row, 18 s for 10,000 rows.)
     * Returns: `id` of each row deleted.
     */
    retain: st("retain", `
      WITH RECURSIVE lock AS (SELECT pg_try_advisory_xact_lock(hashtext($5)) AS held, ${ASYNC_COMMIT} AS async),
      chs AS (
        (SELECT channel FROM ${t} WHERE state = $1 AND ${FINISHED} AND (SELECT held FROM lock) ORDER BY channel LIMIT 1)
        UNION ALL
        SELECT (SELECT channel FROM ${t} WHERE state = $1 AND ${FINISHED} AND channel > chs.channel ORDER BY channel LIMIT 1)
        FROM chs WHERE chs.channel IS NOT NULL
      ),
      doomed AS (
        SELECT h.id FROM chs
        CROSS JOIN LATERAL (SELECT CASE WHEN $2::int >= 0 THEN (
          SELECT seq FROM ${t} WHERE state = $1 AND ${FINISHED} AND channel = chs.channel ORDER BY seq DESC OFFSET greatest($2::int, 0) LIMIT 1) END AS edge
          OFFSET 0) e
        CROSS JOIN LATERAL (
          SELECT id, seq, finished_at FROM ${t} WHERE state = $1 AND ${FINISHED} AND channel = chs.channel ORDER BY seq LIMIT $4) h
        WHERE chs.channel IS NOT NULL AND (h.seq <= e.edge OR h.finished_at < ${NOW_MS} - $3::float8)
      )
      DELETE FROM ${t} m WHERE m.id = ANY(ARRAY(SELECT id FROM doomed)) AND m.state = $1 AND (SELECT async FROM lock)
      RETURNING m.id`),

    /**
     * Complete leases and delete their rows (retention keeps no completed records). $1 json:
     * [{id, token}], $2 text[]: the same ids. Returns: `id` of each row deleted.
     */
    ackDelete: st("ack_delete", `
      DELETE FROM ${t} m USING json_to_recordset($1::json) AS x(id text, token bigint)
      WHERE m.id = ANY($2::text[]) AND m.id = x.id AND m.token = x.token AND ${ASYNC_COMMIT}
      RETURNING m.id`),

    /** Delete up to $3 finished rows in states $1 text[] finished before $2 ms. Returns: `id` of each. */
    prune: st("prune", `
      WITH doomed AS (
        SELECT id FROM ${t} WHERE state = ANY($1::text[]) AND ${FINISHED} AND finished_at < $2 LIMIT $3 FOR UPDATE SKIP LOCKED
      )
      DELETE FROM ${t} m USING doomed WHERE m.id = doomed.id RETURNING m.id`),

    /** Pause a channel. $1 channel. */
    pause: st("pause", `INSERT INTO ${q}.paused (channel) VALUES ($1) ON CONFLICT DO NOTHING`),

    /** Resume a channel and wake its receivers. $1 channel, $2 notify channel. */
    resume: st("resume", `
      WITH d AS (DELETE FROM ${q}.paused WHERE channel = $1 RETURNING channel)
      SELECT pg_notify($2, $1) FROM (SELECT count(*) FROM d) AS n`),

    /** Paused channels. Returns: `channel`, sorted. */
    paused: st("paused", `SELECT channel FROM ${q}.paused ORDER BY channel`),
  };
}
