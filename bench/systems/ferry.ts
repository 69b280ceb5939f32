/**
 * Ferry's own systems: `ferry-sqlite`, `ferry-redis`, `ferry-postgres`, `ferry-amqp`, and
 * `ferry-redis-keep0`, `ferry-postgres-keep0` (keeping no completed records, as peers that delete them).
 * They use only Ferry's public API (`createFerry`, `defineTask`, `dispatch`,
 * `dispatchMany`, `worker`), so they measure what a user gets. Until
 * `src/bus/ferry.ts` exports `createFerry`, each reports "not available yet" and
 * the harness skips it.
 *
 * The backlog scenario's `takeBatch` goes one level down, to the transport Ferry builds
 * from the same URL (`createTransport`): one receive of up to 50 plus one ack.
 *
 * Each run uses the channel `bench.<namespace>`; the transport URL carries the
 * namespace where the transport supports one (`prefix` for Redis, `schema` for
 * PostgreSQL), so clean-up can find everything.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import amqp from "amqplib";
import { BENCH_PREFIX, SERVERS, deleteRedisKeys, dropSchema, removeTmpFiles, tmpDir } from "../support/servers.ts";
import type { BenchHandler, BenchPayload, ServerKind, SystemFactory } from "./types.ts";

const FERRY_MODULE = resolve(fileURLToPath(import.meta.url), "../../../src/bus/ferry.ts");
const INDEX_MODULE = resolve(fileURLToPath(import.meta.url), "../../../src/index.ts");

/** The slice of Ferry's API the harness uses (written against the announced shape). */
interface FerryApi {
  createFerry(options: { transport: string; tasks: unknown[] }): FerryInstance;
  defineTask(name: string, options: { channel: string; run(payload: BenchPayload): Promise<void> }): unknown;
  /** The transport registry (for the backlog scenario's single-call receive). */
  createTransport?(url: string): Promise<MiniTransport>;
}
/** The slice of the Transport contract (src/transport/types.ts) the backlog scenario uses. */
interface MiniTransport {
  receive(request: { channels: string[]; max: number; leaseMs: number; waitMs: number }): Promise<Array<{ message: { id: string }; token: string }>>;
  ack(items: Array<{ id: string; token: string }>): Promise<boolean[]>;
  close(): Promise<void>;
}
interface FerryInstance {
  dispatch(task: unknown, payload: BenchPayload, options?: { delay?: number }): Promise<unknown>;
  dispatchMany(task: unknown, payloads: readonly BenchPayload[]): Promise<unknown>;
  worker(options: { channels: string[]; concurrency: number }): { start(): Promise<void>; stop(): Promise<void> };
  /** The transport bound to a channel, connecting on first use. */
  transport(channel: string): Promise<unknown>;
  close(): Promise<void>;
}

async function loadFerry(): Promise<FerryApi | string> {
  if (!existsSync(FERRY_MODULE)) return "not available yet: src/bus/ferry.ts does not exist";
  try {
    const api = (await import(pathToFileURL(INDEX_MODULE).href)) as Partial<FerryApi>;
    if (typeof api.createFerry !== "function" || typeof api.defineTask !== "function") {
      return "not available yet: src/index.ts does not export createFerry and defineTask";
    }
    return api as FerryApi;
  } catch (err) {
    return `not available: loading Ferry failed: ${(err as Error).message}`;
  }
}

function transportUrl(server: ServerKind, namespace: string): string {
  switch (server) {
    case "sqlite":
      return `sqlite://./${relativeTmp()}/${namespace}.db`;
    case "redis":
      return `${SERVERS.redis}?prefix=${BENCH_PREFIX}:${namespace}`;
    case "postgres":
      return `${SERVERS.postgres}?schema=${namespace}`;
    case "amqp":
      return `${SERVERS.amqp}${SERVERS.amqp.includes("?") ? "&" : "?"}prefix=${BENCH_PREFIX}.${namespace}&runStore=${relativeTmp()}/${namespace}-runs.db`;
  }
}

function relativeTmp(): string {
  const dir = tmpDir();
  const cwd = process.cwd();
  return dir.startsWith(cwd + "/") ? dir.slice(cwd.length + 1) : ".bench-tmp";
}

async function cleanupFor(server: ServerKind, namespace: string): Promise<void> {
  switch (server) {
    case "sqlite":
      removeTmpFiles(namespace);
      return;
    case "redis":
      await deleteRedisKeys(`*${namespace}*`);
      return;
    case "postgres":
      await dropSchema(namespace);
      return;
    case "amqp": {
      // The AMQP transport's topology (src/transport/amqp/topology.ts): queue P:C, P:C:dead,
      // and delay buckets P::delay:k (queue and exchange, k = 0..31). Plus the run store file.
      removeTmpFiles(namespace);
      const prefix = `${BENCH_PREFIX}.${namespace}`;
      const channel = `bench.${namespace}`;
      const buckets = Array.from({ length: 32 }, (_, k) => `${prefix}::delay:${k}`);
      const conn = await amqp.connect(SERVERS.amqp);
      try {
        const ch = await conn.createChannel();
        for (const q of [`${prefix}:${channel}`, `${prefix}:${channel}:dead`, ...buckets]) await ch.deleteQueue(q);
        for (const x of buckets) await ch.deleteExchange(x);
        await ch.close();
      } finally {
        await conn.close();
      }
    }
  }
}

/** A variant of Ferry's defaults: a name suffix, URL query parameters, and what they mean. */
interface Variant {
  suffix: string;
  query: Record<string, string>;
  says: string;
}

function makeFerry(server: ServerKind, variant?: Variant): SystemFactory {
  const url = (namespace: string) => {
    const base = transportUrl(server, namespace);
    if (!variant) return base;
    return `${base}${base.includes("?") ? "&" : "?"}${new URLSearchParams(variant.query).toString()}`;
  };
  return {
    name: `ferry-${server}${variant ? `-${variant.suffix}` : ""}`,
    library: "ferry",
    server,
    ferry: true,
    settings: variant
      ? `Ferry on the ${server} transport, defaults but ${variant.says}; dispatch / dispatchMany (all at once); worker concurrency as given`
      : `Ferry defaults on the ${server} transport (keeps 10,000 completed records per channel for up to a day); dispatch / dispatchMany (all at once); worker concurrency as given`,
    async unavailable() {
      const api = await loadFerry();
      return typeof api === "string" ? api : undefined;
    },
    async create(namespace) {
      const api = await loadFerry();
      if (typeof api === "string") throw new Error(api);
      const channel = `bench.${namespace}`;
      let current: BenchHandler = () => undefined;
      const task = api.defineTask("bench.noop", {
        channel,
        async run(payload) {
          await current(payload);
        },
      });
      const ferry = api.createFerry({ transport: url(namespace), tasks: [task] });
      // Connect before the clock starts, as the peers' systems await ready() / waitUntilReady().
      await ferry.transport(channel);
      const workers: Array<{ stop(): Promise<void> }> = [];
      let transport: MiniTransport | undefined;
      return {
        async enqueueOne(payload) {
          await ferry.dispatch(task, payload);
        },
        async enqueueBulk(payloads) {
          await ferry.dispatchMany(task, payloads);
        },
        async enqueueDelayed(payload, delayMs) {
          await ferry.dispatch(task, payload, { delay: delayMs });
        },
        async startWorker({ concurrency }, handler) {
          current = handler;
          const worker = ferry.worker({ channels: [channel], concurrency });
          await worker.start();
          workers.push(worker);
          return {
            async stop() {
              await worker.stop();
              workers.splice(workers.indexOf(worker), 1);
            },
          };
        },
        // One receive (lease up to max) plus one ack of what came, through Ferry's transport for the same URL.
        ...(api.createTransport
          ? {
              async takeBatch(max: number) {
                transport ??= await api.createTransport!(url(namespace));
                const got = await transport.receive({ channels: [channel], max, leaseMs: 30_000, waitMs: 0 });
                if (got.length > 0) await transport.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
                return got.length;
              },
            }
          : {}),
        async teardown() {
          for (const w of workers.splice(0)) await w.stop().catch(() => undefined);
          await transport?.close();
          await ferry.close();
          await cleanupFor(server, namespace);
        },
      };
    },
    async cleanup(namespace) {
      await cleanupFor(server, namespace);
    },
  };
}

/** Ferry on its embedded SQLite transport. */
export const ferrySqlite = makeFerry("sqlite");
/** Ferry on Redis. */
export const ferryRedis = makeFerry("redis");
/** Ferry on PostgreSQL. */
export const ferryPostgres = makeFerry("postgres");
/** Ferry on RabbitMQ. */
export const ferryAmqp = makeFerry("amqp");

/** Keeping no completed records, as graphile-worker (which deletes completed jobs) and BullMQ's removeOnComplete do. */
const KEEP_NONE: Variant = { suffix: "keep0", query: { completedCount: "0" }, says: "completedCount=0: keeps no completed records (each deleted as it is acked)" };
/** Ferry on Redis, keeping no completed records. */
export const ferryRedisKeep0 = makeFerry("redis", KEEP_NONE);
/** Ferry on PostgreSQL, keeping no completed records. */
export const ferryPostgresKeep0 = makeFerry("postgres", KEEP_NONE);
