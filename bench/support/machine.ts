/**
 * Facts about the machine, servers and packages, for the report.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, freemem, loadavg, totalmem, type as osType, release } from "node:os";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import amqp from "amqplib";
import { SERVERS, pgClient, redisClient } from "./servers.ts";

/** What the report says about where it ran. */
export interface MachineFacts {
  cpu: string;
  cores: number;
  memoryGiB: number;
  freeMemoryGiB: number;
  loadAverage: string;
  os: string;
  node: string;
  /** The checked-out commit of this repository (short hash), or "unknown". */
  commit: string;
  servers: Record<string, string>;
  packages: Record<string, string>;
}

const PACKAGES = ["bullmq", "bee-queue", "pg-boss", "graphile-worker", "ioredis", "pg", "amqplib", "better-sqlite3", "tsx"];

function packageVersion(name: string): string {
  try {
    const file = resolve(process.cwd(), "node_modules", name, "package.json");
    return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
  } catch {
    try {
      const require = createRequire(import.meta.url);
      return (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      return "not installed";
    }
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<T>((r) => (timer = setTimeout(() => r(fallback), ms)));
  try {
    return await Promise.race([p.catch(() => fallback), t]);
  } finally {
    clearTimeout(timer);
  }
}

async function redisVersion(): Promise<string> {
  const redis = redisClient({ lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await redis.connect();
    const info = await redis.info("server");
    return `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? "?"}`;
  } finally {
    redis.disconnect();
  }
}

async function postgresVersion(): Promise<string> {
  const client = await pgClient();
  try {
    const res = await client.query<{ version: string }>("SELECT version()");
    const settings = await client.query<{ name: string; setting: string }>(
      "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'shared_buffers', 'fsync')",
    );
    return `${res.rows[0]!.version.split(" on ")[0]} (${settings.rows.map((r) => `${r.name}=${r.setting}`).join(", ")})`;
  } finally {
    await client.end();
  }
}

async function rabbitVersion(): Promise<string> {
  const conn = await amqp.connect(SERVERS.amqp);
  try {
    const props = (conn as unknown as { connection: { serverProperties: Record<string, string> } }).connection.serverProperties;
    return `RabbitMQ ${props.version ?? "?"}`;
  } finally {
    await conn.close();
  }
}

function sqliteVersion(): Promise<string> {
  return import("better-sqlite3").then(({ default: Database }) => {
    const db = new Database(":memory:");
    try {
      return `SQLite ${(db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v}`;
    } finally {
      db.close();
    }
  });
}

function gitCommit(): string {
  try {
    const hash = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8", timeout: 2000 }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no", "--", "src"], { encoding: "utf8", timeout: 2000 }).trim();
    return dirty ? `${hash} (src/ has uncommitted changes)` : hash;
  } catch {
    return "unknown";
  }
}

function redisServerBinary(): string | undefined {
  try {
    return execFileSync("redis-server", ["--version"], { encoding: "utf8", timeout: 2000 }).trim();
  } catch {
    return undefined;
  }
}

/** Collect the facts (a server that does not answer within 3 s is reported as unreachable). */
export async function machineFacts(): Promise<MachineFacts> {
  const cpuList = cpus();
  const down = "unreachable";
  const [redis, postgres, rabbit, sqlite] = await Promise.all([
    withTimeout(redisVersion(), 3000, down),
    withTimeout(postgresVersion(), 3000, down),
    withTimeout(rabbitVersion(), 3000, down),
    withTimeout(sqliteVersion(), 3000, down),
  ]);
  const binary = redisServerBinary();
  return {
    cpu: cpuList[0]?.model ?? "unknown",
    cores: cpuList.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    freeMemoryGiB: Math.round((freemem() / 2 ** 30) * 10) / 10,
    loadAverage: loadavg().map((l) => l.toFixed(2)).join(" "),
    os: `${osType()} ${release()}`,
    node: process.version,
    commit: gitCommit(),
    servers: {
      redis: binary && redis !== down ? `${redis} (${binary.replace(/^Redis server /, "")})` : redis,
      postgres,
      rabbitmq: rabbit,
      sqlite,
    },
    packages: Object.fromEntries(PACKAGES.map((p) => [p, packageVersion(p)])),
  };
}
