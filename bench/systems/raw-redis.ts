/**
 * The Redis limit: ioredis with one list per namespace. Enqueue is LPUSH (bulk: pipelined
 * multi-value LPUSH, 1,000 values per command); the worker takes batches with RPOP
 * count and blocks with BRPOP when the list is empty. No leases, no retries:
 * this is the ceiling a job system on Redis is measured against.
 */
import { BENCH_PREFIX, deleteRedisKeys, redisClient } from "../support/servers.ts";
import { startLoopWorker } from "../support/loop-worker.ts";
import type { BenchPayload, SystemFactory } from "./types.ts";

const CHUNK = 1000;

/** The raw-redis system. */
export const rawRedis: SystemFactory = {
  name: "raw-redis",
  library: "ioredis",
  server: "redis",
  raw: true,
  settings: "ioredis, one list: LPUSH (bulk: pipelined multi-value LPUSH, 1,000 values per command), worker RPOP <concurrency> then BRPOP 1 s when empty; payload JSON-encoded; no lease, no ack",
  async create(namespace) {
    const key = `${BENCH_PREFIX}:${namespace}:list`;
    const redis = redisClient();
    const workers: import("ioredis").Redis[] = [];
    return {
      async enqueueOne(payload) {
        await redis.lpush(key, JSON.stringify(payload));
      },
      async enqueueBulk(payloads) {
        // Multi-value LPUSH of 1,000 per command, all commands pipelined (ioredis sends them without waiting).
        const pending: Promise<number>[] = [];
        for (let i = 0; i < payloads.length; i += CHUNK) {
          pending.push(redis.lpush(key, ...payloads.slice(i, i + CHUNK).map((p) => JSON.stringify(p))));
        }
        await Promise.all(pending);
      },
      async takeBatch(max) {
        const items = await redis.rpop(key, max);
        return items?.length ?? 0;
      },
      async startWorker({ concurrency }, handler) {
        const conn = redisClient();
        const blocking = redisClient();
        workers.push(conn, blocking);
        const worker = startLoopWorker(
          {
            async take(max) {
              const items = await conn.rpop(key, max);
              return (items ?? []).map((s) => JSON.parse(s) as BenchPayload);
            },
            async idle() {
              const item = await blocking.brpop(key, 1).catch(() => null);
              return item ? [JSON.parse(item[1]) as BenchPayload] : [];
            },
          },
          concurrency,
          handler,
        );
        return {
          async stop() {
            const stopped = worker.stop();
            blocking.disconnect();
            await stopped;
            conn.disconnect();
          },
        };
      },
      async teardown() {
        for (const w of workers) w.disconnect();
        await redis.del(key);
        redis.disconnect();
        await deleteRedisKeys(`${BENCH_PREFIX}:${namespace}:*`);
      },
    };
  },
  async cleanup(namespace) {
    await deleteRedisKeys(`${BENCH_PREFIX}:${namespace}:*`);
  },
};
