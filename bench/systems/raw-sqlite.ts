/**
 * The SQLite limit: better-sqlite3 on one file in WAL mode with
 * `synchronous=NORMAL`. Enqueue is one INSERT in autocommit (bulk: one
 * transaction per 1,000 rows); the worker takes batches with
 * `DELETE ... LIMIT k RETURNING payload` and sleeps 1 ms when empty.
 * The producer and the worker use separate connections, as separate processes would.
 */
import { resolve } from "node:path";
import Database from "better-sqlite3";
import { removeTmpFiles, tmpDir } from "../support/servers.ts";
import { sleep, startLoopWorker } from "../support/loop-worker.ts";
import type { BenchPayload, SystemFactory } from "./types.ts";

const CHUNK = 1000;

function open(file: string): Database.Database {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  return db;
}

/** The raw-sqlite system. */
export const rawSqlite: SystemFactory = {
  name: "raw-sqlite",
  library: "better-sqlite3",
  server: "sqlite",
  raw: true,
  settings: "better-sqlite3, WAL, synchronous=NORMAL: INSERT one row per autocommit (bulk: one transaction per 1,000 rows), worker DELETE ... LIMIT <concurrency> RETURNING on its own connection, 1 ms sleep when empty; no lease, no ack",
  async create(namespace) {
    const file = resolve(tmpDir(), `${namespace}.db`);
    const db = open(file);
    db.exec("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL)");
    const insert = db.prepare("INSERT INTO jobs (payload) VALUES (?)");
    const insertMany = db.transaction((rows: readonly BenchPayload[]) => {
      for (const p of rows) insert.run(JSON.stringify(p));
    });
    const takeStmt = (conn: Database.Database) =>
      conn.prepare("DELETE FROM jobs WHERE id IN (SELECT id FROM jobs ORDER BY id LIMIT ?) RETURNING payload").pluck();
    const producerTake = takeStmt(db);
    const conns: Database.Database[] = [];
    return {
      async enqueueOne(payload) {
        insert.run(JSON.stringify(payload));
      },
      async enqueueBulk(payloads) {
        for (let i = 0; i < payloads.length; i += CHUNK) {
          insertMany(payloads.slice(i, i + CHUNK));
          await new Promise((r) => setImmediate(r));
        }
      },
      async takeBatch(max) {
        return producerTake.all(max).length;
      },
      async startWorker({ concurrency }, handler) {
        const conn = open(file);
        conns.push(conn);
        const take = takeStmt(conn);
        const worker = startLoopWorker(
          {
            async take(max) {
              return (take.all(max) as string[]).map((s) => JSON.parse(s) as BenchPayload);
            },
            idle: () => sleep(1).then(() => []),
          },
          concurrency,
          handler,
        );
        return {
          async stop() {
            await worker.stop();
            conns.splice(conns.indexOf(conn), 1);
            conn.close();
          },
        };
      },
      async teardown() {
        for (const c of conns.splice(0)) c.close();
        db.close();
        removeTmpFiles(namespace);
      },
    };
  },
  async cleanup(namespace) {
    removeTmpFiles(namespace);
  },
};
