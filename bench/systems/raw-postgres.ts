/**
 * The PostgreSQL limit: node-postgres with one table in a schema of its own.
 * Enqueue is a single-row INSERT (bulk: 1,000-row multi-row INSERTs); the worker
 * takes batches with `DELETE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED
 * LIMIT k) RETURNING payload` and sleeps 2 ms when the table is empty. No leases,
 * no retries: the ceiling a job system on PostgreSQL is measured against.
 */
import pg from "pg";
import { SERVERS, dropSchema } from "../support/servers.ts";
import { startLoopWorker } from "../support/loop-worker.ts";
import type { BenchPayload, SystemFactory } from "./types.ts";

const CHUNK = 1000;

/** The raw-postgres system. */
export const rawPostgres: SystemFactory = {
  name: "raw-postgres",
  library: "pg",
  server: "postgres",
  raw: true,
  settings: "node-postgres, one table (bigserial id, jsonb payload): INSERT one row (bulk: 1,000-row multi-insert), worker DELETE ... FOR UPDATE SKIP LOCKED LIMIT <concurrency> RETURNING, 2 ms sleep when empty; no lease, no ack",
  async create(namespace) {
    const schema = namespace;
    const table = `"${schema}".jobs`;
    const pool = new pg.Pool({ connectionString: SERVERS.postgres, max: 4 });
    await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await pool.query(`CREATE TABLE IF NOT EXISTS ${table} (id bigserial PRIMARY KEY, payload jsonb NOT NULL)`);
    const insertOne = { name: `${schema}_ins1`, text: `INSERT INTO ${table} (payload) VALUES ($1)` };
    const takeSql = `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} ORDER BY id FOR UPDATE SKIP LOCKED LIMIT $1) RETURNING payload`;
    const take = async (client: pg.Pool | pg.PoolClient, max: number): Promise<BenchPayload[]> => {
      const res = await client.query<{ payload: BenchPayload }>({ name: `${schema}_take`, text: takeSql, values: [max] });
      return res.rows.map((r) => r.payload);
    };
    const held: pg.PoolClient[] = [];
    return {
      async enqueueOne(payload) {
        await pool.query({ ...insertOne, values: [JSON.stringify(payload)] });
      },
      async enqueueBulk(payloads) {
        for (let i = 0; i < payloads.length; i += CHUNK) {
          const chunk = payloads.slice(i, i + CHUNK);
          const values = chunk.map((_, j) => `($${j + 1})`).join(",");
          await pool.query(`INSERT INTO ${table} (payload) VALUES ${values}`, chunk.map((p) => JSON.stringify(p)));
        }
      },
      async takeBatch(max) {
        return (await take(pool, max)).length;
      },
      async startWorker({ concurrency }, handler) {
        const client = await pool.connect();
        held.push(client);
        const worker = startLoopWorker({ take: (max) => take(client, max) }, concurrency, handler);
        return {
          async stop() {
            await worker.stop();
            held.splice(held.indexOf(client), 1);
            client.release();
          },
        };
      },
      async teardown() {
        for (const c of held.splice(0)) c.release();
        await pool.end();
        await dropSchema(schema);
      },
    };
  },
  async cleanup(namespace) {
    await dropSchema(namespace);
  },
};
