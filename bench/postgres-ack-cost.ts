/**
 * What completing a message costs the PostgreSQL server, by the way the run record is kept:
 * `npx tsx bench/postgres-ack-cost.ts` (database from FERRY_TEST_POSTGRES, default the local
 * `test`; uses and drops schemas `ferry_ackcost_*`).
 *
 * For each way, 20,000 leased rows in Ferry's own schema are completed in batches of 200 on
 * one connection with asynchronous commit (as Ferry's acks are), three rounds:
 * - keep:   Ferry's ack, an `UPDATE` to `completed` (the row stays as the run record);
 * - delete: Ferry's ack with a retention that keeps nothing (and graphile-worker's), a `DELETE`;
 * - move:   a `DELETE` that copies the row to an unlogged table (no WAL for the record).
 * Prints the time and the WAL written per row.
 */
import pg from "pg";
import { migrate } from "../src/transport/postgres/migrate.ts";

const url = process.env.FERRY_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";
const pool = new pg.Pool({ connectionString: url, max: 2 });
const N = 20_000;
const BATCH = 200;

async function setup(schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await migrate({ pool, schema });
  await pool.query(`CREATE UNLOGGED TABLE ${schema}.finished (id text COLLATE "C" PRIMARY KEY, channel text COLLATE "C" NOT NULL, name text NOT NULL,
    payload json NOT NULL, headers json NOT NULL, state text NOT NULL, attempt int NOT NULL, created_at float8, started_at float8, finished_at float8,
    errors jsonb, result json, seq bigint)`);
  await pool.query(`CREATE INDEX ON ${schema}.finished (state, channel, seq)`);
  await pool.query(`INSERT INTO ${schema}.messages (id, channel, name, payload, run_at, due_at, created_at, state, token, attempt)
    SELECT 'm' || lpad(g::text, 8, '0'), 'bench', 'bench.noop', json_build_object('i', g, 't', 1700000000000, 'pad', repeat('x', 60)),
      0, 99999999999999, 0, 'active', 5, 1 FROM generate_series(1, ${N}) g`);
  await pool.query(`VACUUM ANALYZE ${schema}.messages`);
}

const WAYS: Record<string, (schema: string) => string> = {
  keep: (s) => `UPDATE ${s}.messages m SET state = 'completed', token = m.token + 1, result = NULL, finished_at = 1 WHERE m.id = ANY($1::text[]) AND m.token = 5`,
  delete: (s) => `DELETE FROM ${s}.messages m WHERE m.id = ANY($1::text[]) AND m.token = 5`,
  move: (s) => `WITH d AS (DELETE FROM ${s}.messages m WHERE m.id = ANY($1::text[]) AND m.token = 5 RETURNING *)
    INSERT INTO ${s}.finished SELECT id, channel, name, payload, headers, 'completed', attempt, created_at, started_at, 1, errors, NULL, seq FROM d`,
};

try {
  for (let round = 1; round <= 3; round++) {
    for (const [way, sql] of Object.entries(WAYS)) {
      const schema = `ferry_ackcost_${way}`;
      await setup(schema);
      const client = await pool.connect();
      try {
        await client.query("SET synchronous_commit = off");
        const lsn = (await client.query<{ lsn: string }>("SELECT pg_current_wal_lsn() AS lsn")).rows[0]!.lsn;
        const start = performance.now();
        for (let i = 0; i < N; i += BATCH) {
          const ids = Array.from({ length: BATCH }, (_, k) => `m${String(i + k + 1).padStart(8, "0")}`);
          await client.query(sql(schema), [ids]);
        }
        const ms = performance.now() - start;
        const bytes = (await client.query<{ bytes: string }>("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS bytes", [lsn])).rows[0]!.bytes;
        console.log(`round ${round} ${way.padEnd(6)} ${((ms * 1000) / N).toFixed(1)} us/row, ${(Number(bytes) / N).toFixed(0)} B of WAL/row`);
      } finally {
        client.release();
        await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      }
    }
  }
} finally {
  await pool.end();
}
