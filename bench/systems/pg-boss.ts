/**
 * pg-boss on PostgreSQL, in a schema of its own (`fb_<namespace>` is the schema).
 * Enqueue is `send` (bulk: `insert`, 1,000 jobs per call); delays use `startAfter`.
 * Two systems:
 * - `pg-boss`: library defaults. pg-boss 10 has no concurrency option; concurrency c is
 *   c `work()` registrations, each with the defaults (batchSize 1, pollingIntervalSeconds 2).
 * - `pg-boss-tuned`: one `work()` with `batchSize: 500` and `pollingIntervalSeconds: 0.5`
 *   (the minimum the library accepts); each fetched batch runs with at most c handlers in flight.
 */
import PgBoss from "pg-boss";
import { SERVERS, dropSchema } from "../support/servers.ts";
import type { BenchHandler, BenchPayload, SystemFactory } from "./types.ts";

const CHUNK = 1000;
const QUEUE = "bench";
const TUNED_BATCH = 500;

async function runLimited(items: readonly PgBoss.Job<BenchPayload>[], limit: number, handler: BenchHandler): Promise<void> {
  for (let i = 0; i < items.length; i += limit) {
    await Promise.all(items.slice(i, i + limit).map((job) => handler(job.data)));
  }
}

function makePgBoss(name: string, tuned: boolean): SystemFactory {
  return {
    name,
    library: "pg-boss",
    server: "postgres",
    settings: tuned
      ? `one work() with batchSize ${TUNED_BATCH}, pollingIntervalSeconds 0.5 (library minimum), batch run with at most <concurrency> handlers in flight; insert() in chunks of 1,000`
      : "library defaults (pollingIntervalSeconds 2, batchSize 1, supervise and schedule on); concurrency c = c work() registrations; insert() in chunks of 1,000",
    async create(namespace) {
      const boss = new PgBoss({ connectionString: SERVERS.postgres, schema: namespace, max: 10 });
      boss.on("error", (err) => process.stderr.write(`pg-boss error: ${err.message}\n`));
      await boss.start();
      await boss.createQueue(QUEUE);
      let working = false;
      return {
        async enqueueOne(payload) {
          await boss.send(QUEUE, payload);
        },
        async enqueueBulk(payloads) {
          for (let i = 0; i < payloads.length; i += CHUNK) {
            await boss.insert(payloads.slice(i, i + CHUNK).map((data) => ({ name: QUEUE, data })));
          }
        },
        async enqueueDelayed(payload, delayMs) {
          await boss.send(QUEUE, payload, { startAfter: new Date(Date.now() + delayMs) });
        },
        async startWorker({ concurrency }, handler) {
          working = true;
          if (tuned) {
            await boss.work<BenchPayload>(QUEUE, { batchSize: TUNED_BATCH, pollingIntervalSeconds: 0.5 }, (jobs) => runLimited(jobs, concurrency, handler));
          } else {
            for (let i = 0; i < concurrency; i++) {
              await boss.work<BenchPayload>(QUEUE, (jobs) => runLimited(jobs, 1, handler));
            }
          }
          return {
            async stop() {
              await boss.offWork(QUEUE);
              working = false;
            },
          };
        },
        async teardown() {
          if (working) await boss.offWork(QUEUE).catch(() => undefined);
          await boss.stop({ graceful: false, wait: true, close: true, timeout: 2000 });
          await dropSchema(namespace);
        },
      };
    },
    async cleanup(namespace) {
      await dropSchema(namespace);
    },
  };
}

/** pg-boss with its defaults. */
export const pgBossDefaults = makePgBoss("pg-boss", false);
/** pg-boss with its best polling/batch settings. */
export const pgBossTuned = makePgBoss("pg-boss-tuned", true);
