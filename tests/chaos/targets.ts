/**
 * Chaos targets: one per transport. Each gives an isolated transport URL (a
 * temporary SQLite file, a unique Redis prefix, a unique PostgreSQL schema, a
 * unique AMQP prefix and run store) and removes everything it created.
 * Never flushes or drops anything it did not create.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serverSkipReason, SERVERS } from "../support/servers.ts";

/** Transports the chaos harness knows. */
export type TargetName = "sqlite" | "redis" | "postgres" | "amqp";

/** All targets, in run order. */
export const TARGET_NAMES: readonly TargetName[] = ["sqlite", "redis", "postgres", "amqp"];

/** One isolated place to run a chaos scenario. */
export interface Target {
  name: TargetName;
  /** The transport URL for producers, checkers and workers. */
  url: string;
  /** A folder for the ledger and other files of this run. */
  dir: string;
  /** The server's TCP port (server-backed transports), for the fault proxy. */
  port?: number;
  /** The same URL pointing at another port on loopback (the fault proxy). */
  viaPort(port: number): string;
  /** Remove what this run created (files, keys, schema, queues). */
  cleanup(channels: readonly string[]): Promise<void>;
}

/** Why a target cannot run here, or undefined when it can. */
export async function targetSkipReason(name: TargetName): Promise<string | undefined> {
  if (name === "sqlite") return undefined;
  return serverSkipReason(name);
}

function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.port = String(port);
  return u.toString();
}

/** Make an isolated target for `name`, labelled `label` (letters and digits). */
export function makeTarget(name: TargetName, label: string): Target {
  const tag = `${label}${randomBytes(4).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), `ferry-chaos-${name}-`));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  switch (name) {
    case "sqlite": {
      const url = `sqlite://${join(dir, "queue.db")}`;
      return { name, url, dir, viaPort: () => url, cleanup: async () => removeDir() };
    }
    case "redis": {
      const prefix = `chaos-${tag}`;
      const base = new URL(SERVERS.redis);
      const url = `${SERVERS.redis}?prefix=${prefix}`;
      return {
        name,
        url,
        dir,
        port: Number(base.port || 6379),
        viaPort: (port) => withPort(url, port),
        async cleanup() {
          const { Redis } = await import("ioredis");
          const client = new Redis(SERVERS.redis, { lazyConnect: true, maxRetriesPerRequest: 3 });
          try {
            await client.connect();
            let cursor = "0";
            do {
              const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
              cursor = next;
              if (keys.length > 0) await client.del(...keys);
            } while (cursor !== "0");
          } finally {
            client.disconnect();
            removeDir();
          }
        },
      };
    }
    case "postgres": {
      const schema = `chaos_${tag}`;
      const base = new URL(SERVERS.postgres);
      const url = `${SERVERS.postgres}?schema=${schema}`;
      return {
        name,
        url,
        dir,
        port: Number(base.port || 5432),
        viaPort: (port) => withPort(url, port),
        async cleanup() {
          const pg = (await import("pg")).default;
          const client = new pg.Client({ connectionString: SERVERS.postgres });
          try {
            await client.connect();
            await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          } finally {
            await client.end().catch(() => undefined);
            removeDir();
          }
        },
      };
    }
    case "amqp": {
      const prefix = `chaos-${tag}`;
      const base = new URL(SERVERS.amqp);
      const url = `${SERVERS.amqp}?prefix=${prefix}&runStore=${encodeURIComponent(join(dir, "runs.db"))}`;
      return {
        name,
        url,
        dir,
        port: Number(base.port || 5672),
        viaPort: (port) => withPort(url, port),
        async cleanup(channels) {
          const amqp = await import("amqplib");
          const conn = await amqp.connect(SERVERS.amqp);
          try {
            const names: string[] = [];
            for (const c of channels) names.push(`${prefix}:${c}`, `${prefix}:${c}:dead`);
            const buckets: string[] = [];
            for (let k = 0; k <= 31; k++) buckets.push(`${prefix}::delay:${k}`);
            for (const q of [...names, ...buckets]) {
              const ch = await conn.createChannel();
              ch.on("error", () => undefined);
              await ch.deleteQueue(q).catch(() => undefined);
              await ch.close().catch(() => undefined);
            }
            for (const x of buckets) {
              const ch = await conn.createChannel();
              ch.on("error", () => undefined);
              await ch.deleteExchange(x).catch(() => undefined);
              await ch.close().catch(() => undefined);
            }
          } finally {
            await conn.close().catch(() => undefined);
            removeDir();
          }
        },
      };
    }
  }
}
