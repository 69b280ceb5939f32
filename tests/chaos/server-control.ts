/**
 * Restarting the shared test servers for R2 `--r2-restart`, with the commands
 * of `.ci/run`. Each restart waits until the server answers again and throws
 * when it does not within its limit. Only `npm run chaos -- --r2-restart` calls
 * this, never `npm test`: other engineers use the same servers.
 */
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { promisify } from "node:util";
import { portOpen } from "../support/servers.ts";
import type { TargetName } from "./targets.ts";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until 127.0.0.1:port accepts connections; returns the ms waited. */
export async function waitForPort(port: number, limitMs: number): Promise<number> {
  const start = Date.now();
  while (!(await portOpen("127.0.0.1", port, 500))) {
    if (Date.now() - start > limitMs) throw new Error(`nothing listens on 127.0.0.1:${port} after ${limitMs} ms`);
    await sleep(100);
  }
  return Date.now() - start;
}

async function redisCli(...args: string[]): Promise<string> {
  return (await run("redis-cli", ["-h", "127.0.0.1", "-p", "6379", ...args])).stdout.trim();
}

/** Redis settings changed for the durable variant, to restore afterwards. */
export interface RedisDurability {
  dir: string;
  appendonly: string;
  appendfsync: string;
}

/** Turn on `appendonly yes` + `appendfsync always`; returns what to restore. */
export async function redisMakeDurable(): Promise<RedisDurability> {
  const get = async (key: string) => (await redisCli("CONFIG", "GET", key)).split("\n")[1] ?? "";
  const before = { dir: await get("dir"), appendonly: await get("appendonly"), appendfsync: await get("appendfsync") };
  await redisCli("CONFIG", "SET", "appendfsync", "always");
  await redisCli("CONFIG", "SET", "appendonly", "yes");
  // Wait for the initial AOF rewrite, so the file holds the whole data set.
  for (let i = 0; i < 300; i++) {
    const info = await redisCli("INFO", "persistence");
    if (/aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info)) break;
    await sleep(100);
  }
  return before;
}

/** Restore what {@link redisMakeDurable} changed. */
export async function redisRestore(before: RedisDurability): Promise<void> {
  await redisCli("CONFIG", "SET", "appendonly", before.appendonly);
  await redisCli("CONFIG", "SET", "appendfsync", before.appendfsync);
}

/** Wait until nothing listens on 127.0.0.1:port any more (the killed server is gone). */
async function waitForPortClosed(port: number, limitMs: number): Promise<void> {
  const start = Date.now();
  while (await portOpen("127.0.0.1", port, 500)) {
    if (Date.now() - start > limitMs) throw new Error(`127.0.0.1:${port} still answers ${limitMs} ms after SIGKILL`);
    await sleep(50);
  }
}

/**
 * Crash one server and start it again the way `.ci/run` does; resolves with
 * the ms the server was unreachable. Redis and RabbitMQ's Erlang VM get
 * `SIGKILL` (no shutdown, no final write: a crash); PostgreSQL gets
 * `stop -m immediate`, its own crash stop (recovery from the WAL on start).
 * For Redis, `durable` restarts it with the AOF on (from the same dir) so
 * acknowledged writes come back; without it Redis restarts empty, as `.ci/run`
 * starts it.
 */
export async function restartServer(name: Exclude<TargetName, "sqlite">, options: { durable?: RedisDurability } = {}): Promise<number> {
  const start = Date.now();
  if (name === "redis") {
    const pid = Number(/process_id:(\d+)/.exec(await redisCli("INFO", "server"))?.[1]);
    if (!Number.isInteger(pid) || pid <= 1) throw new Error("could not read Redis' process id from INFO server");
    process.kill(pid, "SIGKILL");
    await waitForPortClosed(6379, 10_000);
    const flags = ["--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", ""];
    if (options.durable) flags.push("--appendonly", "yes", "--appendfsync", "always", "--dir", options.durable.dir);
    else flags.push("--appendonly", "no");
    await run("redis-server", flags);
    await waitForPort(6379, 30_000);
    for (let i = 0; i < 300 && !/loading:0/.test(await redisCli("INFO", "persistence").catch(() => "")); i++) await sleep(100);
  } else if (name === "postgres") {
    const version = readdirSync("/etc/postgresql")[0]!;
    await run("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "stop", "-m", "immediate"]);
    await run("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "start"]);
    for (let i = 0; i < 300; i++) {
      const ok = await run("pg_isready", ["-h", "127.0.0.1", "-p", "5432"]).then(() => true, () => false);
      if (ok) break;
      await sleep(100);
    }
  } else {
    // the broker's Erlang VM runs as the rabbitmq user; the oldest beam.smp of that user is the node
    const pid = Number((await run("pgrep", ["-o", "-u", "rabbitmq", "beam.smp"])).stdout.trim());
    if (!Number.isInteger(pid) || pid <= 1) throw new Error("could not find RabbitMQ's Erlang VM (beam.smp of user rabbitmq)");
    process.kill(pid, "SIGKILL");
    await waitForPortClosed(5672, 10_000);
    await run("rabbitmq-server", ["-detached"]);
    await waitForPort(5672, 90_000);
  }
  return Date.now() - start;
}
