/**
 * graphile-worker on PostgreSQL, in a schema of its own (the namespace). Enqueue is
 * `addJob` (bulk: `addJobs`, 1,000 per call); delays use `runAt`. Two systems:
 * - `graphile-worker`: library defaults (pollInterval 2 s, no local queue, no completion batching).
 * - `graphile-worker-batched`: its documented batching on: `localQueue.size` 500,
 *   `completeJobBatchDelay: 0`, `failJobBatchDelay: 0`, and `useNodeTime: true`.
 * Concurrency maps to `concurrency` (concurrentJobs). Its logger is silenced.
 */
import { Logger, makeWorkerUtils, run, runMigrations, type WorkerUtils } from "graphile-worker";
import { SERVERS, dropSchema } from "../support/servers.ts";
import type { BenchPayload, SystemFactory } from "./types.ts";

const CHUNK = 1000;
const TASK = "bench_noop";
const LOCAL_QUEUE = 500;
const silent = new Logger(() => () => undefined);

function makeGraphile(name: string, batched: boolean): SystemFactory {
  return {
    name,
    library: "graphile-worker",
    server: "postgres",
    settings: batched
      ? `batching on: preset.worker { localQueue: { size: ${LOCAL_QUEUE} }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }, useNodeTime: true; concurrency as given; addJobs in chunks of 1,000`
      : "library defaults (pollInterval 2 s, LISTEN/NOTIFY for new jobs, no local queue, no completion batching); concurrency as given; addJobs in chunks of 1,000",
    async create(namespace) {
      const common = { connectionString: SERVERS.postgres, schema: namespace, logger: silent };
      await runMigrations(common);
      const utils: WorkerUtils = await makeWorkerUtils(common);
      const runners: Array<{ stop(): Promise<void> }> = [];
      return {
        async enqueueOne(payload) {
          await utils.addJob(TASK, payload);
        },
        async enqueueBulk(payloads) {
          for (let i = 0; i < payloads.length; i += CHUNK) {
            await utils.addJobs(payloads.slice(i, i + CHUNK).map((payload) => ({ identifier: TASK, payload })));
          }
        },
        async enqueueDelayed(payload, delayMs) {
          await utils.addJob(TASK, payload, { runAt: new Date(Date.now() + delayMs) });
        },
        async startWorker({ concurrency }, handler) {
          const runner = await run({
            ...common,
            concurrency,
            noHandleSignals: true,
            taskList: { [TASK]: async (payload) => handler(payload as BenchPayload) },
            ...(batched
              ? {
                  useNodeTime: true,
                  preset: { worker: { localQueue: { size: LOCAL_QUEUE }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
                }
              : {}),
          });
          runners.push(runner);
          return {
            async stop() {
              await runner.stop();
              runners.splice(runners.indexOf(runner), 1);
            },
          };
        },
        async teardown() {
          for (const r of runners.splice(0)) await r.stop().catch(() => undefined);
          await utils.release();
          await dropSchema(namespace);
        },
      };
    },
    async cleanup(namespace) {
      await dropSchema(namespace);
    },
  };
}

/** graphile-worker with its defaults. */
export const graphileDefaults = makeGraphile("graphile-worker", false);
/** graphile-worker with its batching options on. */
export const graphileBatched = makeGraphile("graphile-worker-batched", true);
