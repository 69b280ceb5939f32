/**
 * BullMQ on Redis, as users run it: `Queue.add` / `Queue.addBulk` (1,000 jobs per
 * call) and a `Worker` with the given concurrency. Two systems: `bullmq` with the
 * library's defaults (completed jobs kept: `removeOnComplete` unset), and
 * `bullmq-removeoncomplete` with `removeOnComplete: true, removeOnFail: true`.
 * Every key lives under the prefix `ferrybench:<namespace>`.
 */
import { Queue, Worker } from "bullmq";
import { BENCH_PREFIX, deleteRedisKeys, redisOptions } from "../support/servers.ts";
import type { BenchPayload, SystemFactory } from "./types.ts";

const CHUNK = 1000;
const QUEUE = "bench";

function makeBullmq(name: string, removeOnComplete: boolean): SystemFactory {
  return {
    name,
    library: "bullmq",
    server: "redis",
    settings: removeOnComplete
      ? "defaults except defaultJobOptions { removeOnComplete: true, removeOnFail: true }; Worker concurrency as given; addBulk in chunks of 1,000"
      : "library defaults (completed jobs are kept: removeOnComplete unset; stalledInterval 30 s, drainDelay 5 s); Worker concurrency as given; addBulk in chunks of 1,000",
    async create(namespace) {
      const prefix = `${BENCH_PREFIX}:${namespace}`;
      const connection = { ...redisOptions() };
      const queue = new Queue<BenchPayload>(QUEUE, {
        connection,
        prefix,
        ...(removeOnComplete ? { defaultJobOptions: { removeOnComplete: true, removeOnFail: true } } : {}),
      });
      await queue.waitUntilReady();
      const workers: Worker[] = [];
      return {
        async enqueueOne(payload) {
          await queue.add("noop", payload);
        },
        async enqueueBulk(payloads) {
          for (let i = 0; i < payloads.length; i += CHUNK) {
            await queue.addBulk(payloads.slice(i, i + CHUNK).map((data) => ({ name: "noop", data })));
          }
        },
        async enqueueDelayed(payload, delayMs) {
          await queue.add("noop", payload, { delay: delayMs });
        },
        async startWorker({ concurrency }, handler) {
          const worker = new Worker<BenchPayload>(QUEUE, async (job) => handler(job.data), {
            connection: { ...connection, maxRetriesPerRequest: null },
            prefix,
            concurrency,
          });
          worker.on("error", (err) => process.stderr.write(`bullmq worker error: ${err.message}\n`));
          workers.push(worker);
          await worker.waitUntilReady();
          return {
            async stop() {
              await worker.close();
              workers.splice(workers.indexOf(worker), 1);
            },
          };
        },
        async teardown() {
          for (const w of workers.splice(0)) await w.close(true);
          await queue.obliterate({ force: true }).catch(() => undefined);
          await queue.close();
          await deleteRedisKeys(`${prefix}:*`);
        },
      };
    },
    async cleanup(namespace) {
      await deleteRedisKeys(`${BENCH_PREFIX}:${namespace}:*`);
    },
  };
}

/** BullMQ with its defaults (completed jobs kept). */
export const bullmqDefaults = makeBullmq("bullmq", false);
/** BullMQ with `removeOnComplete: true` (what most production set-ups use). */
export const bullmqRemoveOnComplete = makeBullmq("bullmq-removeoncomplete", true);
