/**
 * Every system the harness knows, in report order: Ferry first, then the peers by
 * server, then the raw-client limits. Modules load lazily, so a child process that
 * measures one system loads only that system's library (its RSS is its own).
 */
import type { SystemFactory } from "./types.ts";

const LOADERS: ReadonlyArray<readonly [string, () => Promise<SystemFactory>]> = [
  ["ferry-sqlite", async () => (await import("./ferry.ts")).ferrySqlite],
  ["ferry-redis", async () => (await import("./ferry.ts")).ferryRedis],
  ["ferry-postgres", async () => (await import("./ferry.ts")).ferryPostgres],
  ["ferry-redis-keep0", async () => (await import("./ferry.ts")).ferryRedisKeep0],
  ["ferry-postgres-keep0", async () => (await import("./ferry.ts")).ferryPostgresKeep0],
  ["ferry-amqp", async () => (await import("./ferry.ts")).ferryAmqp],
  ["bullmq", async () => (await import("./bullmq.ts")).bullmqDefaults],
  ["bullmq-removeoncomplete", async () => (await import("./bullmq.ts")).bullmqRemoveOnComplete],
  ["bee-queue", async () => (await import("./bee-queue.ts")).beeQueue],
  ["pg-boss", async () => (await import("./pg-boss.ts")).pgBossDefaults],
  ["pg-boss-tuned", async () => (await import("./pg-boss.ts")).pgBossTuned],
  ["graphile-worker", async () => (await import("./graphile-worker.ts")).graphileDefaults],
  ["graphile-worker-batched", async () => (await import("./graphile-worker.ts")).graphileBatched],
  ["raw-sqlite", async () => (await import("./raw-sqlite.ts")).rawSqlite],
  ["raw-redis", async () => (await import("./raw-redis.ts")).rawRedis],
  ["raw-postgres", async () => (await import("./raw-postgres.ts")).rawPostgres],
  ["raw-amqp", async () => (await import("./raw-amqp.ts")).rawAmqp],
];

/** Names of all systems, in report order. */
export const SYSTEM_NAMES: readonly string[] = LOADERS.map(([name]) => name);

/** Load one system by name, or undefined when there is none by that name. */
export async function loadSystem(name: string): Promise<SystemFactory | undefined> {
  const entry = LOADERS.find(([n]) => n === name);
  return entry ? entry[1]() : undefined;
}

/** Load every system (the parent process does this to read their settings). */
export async function loadAllSystems(): Promise<SystemFactory[]> {
  return Promise.all(LOADERS.map(([, load]) => load()));
}
