/**
 * bee-queue on Redis: a producer `Queue` with `isWorker: false` (as its docs advise
 * for producers) using `createJob().save()` / `saveAll` (1,000 jobs per call), and a
 * worker `Queue` with `process(concurrency, handler)`. Library defaults otherwise
 * (completed jobs kept: `removeOnSuccess: false`; events on), except
 * `activateDelayedJobs: true` on the worker, without which delayed jobs never run.
 * Every key lives under the prefix `ferrybench:<namespace>`.
 */
import BeeQueue from "bee-queue";
import { BENCH_PREFIX, deleteRedisKeys, redisOptions } from "../support/servers.ts";
import type { BenchPayload, SystemFactory } from "./types.ts";

const CHUNK = 1000;
const QUEUE = "bench";

/** The bee-queue system. */
export const beeQueue: SystemFactory = {
  name: "bee-queue",
  library: "bee-queue",
  server: "redis",
  settings:
    "library defaults (removeOnSuccess false, events on, delayedDebounce 1 s, stallInterval 5 s); producer Queue isWorker: false; worker Queue activateDelayedJobs: true (needed for delays); saveAll in chunks of 1,000",
  async create(namespace) {
    const prefix = `${BENCH_PREFIX}:${namespace}`;
    const producer = new BeeQueue<BenchPayload>(QUEUE, { prefix, redis: redisOptions(), isWorker: false, getEvents: false });
    await producer.ready();
    const workers: BeeQueue<BenchPayload>[] = [];
    return {
      async enqueueOne(payload) {
        await producer.createJob(payload).save();
      },
      async enqueueBulk(payloads) {
        for (let i = 0; i < payloads.length; i += CHUNK) {
          const errors = await producer.saveAll(payloads.slice(i, i + CHUNK).map((p) => producer.createJob(p)));
          if (errors.size > 0) throw new Error(`bee-queue saveAll failed for ${errors.size} jobs: ${[...errors.values()][0]?.message}`);
        }
      },
      async enqueueDelayed(payload, delayMs) {
        await producer.createJob(payload).delayUntil(Date.now() + delayMs).save();
      },
      async startWorker({ concurrency }, handler) {
        const worker = new BeeQueue<BenchPayload>(QUEUE, { prefix, redis: redisOptions(), activateDelayedJobs: true });
        worker.on("error", (err) => process.stderr.write(`bee-queue worker error: ${err.message}\n`));
        workers.push(worker);
        await worker.ready();
        worker.process(concurrency, async (job) => {
          await handler(job.data);
        });
        return {
          async stop() {
            await worker.close(5000);
            workers.splice(workers.indexOf(worker), 1);
          },
        };
      },
      async teardown() {
        for (const w of workers.splice(0)) await w.close(1000).catch(() => undefined);
        await producer.destroy().catch(() => undefined);
        await producer.close();
        await deleteRedisKeys(`${prefix}:*`);
      },
    };
  },
  async cleanup(namespace) {
    await deleteRedisKeys(`${BENCH_PREFIX}:${namespace}:*`);
  },
};
