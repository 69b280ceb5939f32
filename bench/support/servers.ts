/**
 * Server addresses and clean-up helpers shared by the system adapters. Addresses
 * come from tests/support/servers.ts (overridable by the same environment variables).
 */
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { SERVERS, portOpen } from "../../tests/support/servers.ts";
import type { ServerKind } from "../systems/types.ts";

export { SERVERS };

/** Prefix of every Redis key, schema and queue the harness creates. */
export const BENCH_PREFIX = "ferrybench";

/** Folder for SQLite files, relative to the working directory. Default `.bench-tmp`. */
export const TMP_DIR = resolve(process.env.FERRY_BENCH_TMP ?? ".bench-tmp");

/** Make sure {@link TMP_DIR} exists and return it. */
export function tmpDir(): string {
  mkdirSync(TMP_DIR, { recursive: true });
  return TMP_DIR;
}

/** Delete every file in {@link TMP_DIR} whose name starts with `namespace`. */
export function removeTmpFiles(namespace: string): void {
  let names: string[];
  try {
    names = readdirSync(TMP_DIR);
  } catch {
    return;
  }
  for (const name of names) if (name.startsWith(namespace)) rmSync(resolve(TMP_DIR, name), { force: true, recursive: true });
}

/** Redis connection options from {@link SERVERS}.redis. */
export function redisOptions(): { host: string; port: number; db: number; password?: string } {
  const url = new URL(SERVERS.redis);
  const db = Number(url.pathname.replace("/", "") || 0);
  return { host: url.hostname, port: Number(url.port || 6379), db, ...(url.password ? { password: decodeURIComponent(url.password) } : {}) };
}

/** A new ioredis client on the bench Redis. */
export function redisClient(extra: Record<string, unknown> = {}): Redis {
  return new Redis({ ...redisOptions(), lazyConnect: false, ...extra });
}

/**
 * Delete every Redis key matching `pattern` (SCAN + UNLINK, never FLUSH*).
 * The pattern must contain the namespace, so only this run's keys are touched.
 */
export async function deleteRedisKeys(pattern: string): Promise<number> {
  if (!pattern.includes(BENCH_PREFIX) && !pattern.includes("fb_")) throw new Error(`refusing to delete Redis keys outside the bench namespace: ${pattern}`);
  const redis = redisClient();
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/** A new pg client (connected) on the bench database. */
export async function pgClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: SERVERS.postgres });
  await client.connect();
  return client;
}

/** Drop a schema this harness created (the name must start with `fb_`). */
export async function dropSchema(schema: string): Promise<void> {
  if (!/^fb_[a-z0-9_]+$/.test(schema)) throw new Error(`refusing to drop schema outside the bench namespace: ${schema}`);
  const client = await pgClient();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Why the server a system needs is not reachable, or undefined when it is. */
export async function serverDown(kind: ServerKind): Promise<string | undefined> {
  if (kind === "sqlite") return undefined;
  const url = new URL(SERVERS[kind]);
  const defaults = { redis: 6379, postgres: 5432, amqp: 5672 } as const;
  const port = Number(url.port || defaults[kind]);
  if (await portOpen(url.hostname, port)) return undefined;
  return `${kind} is not reachable at ${url.hostname}:${port}`;
}
