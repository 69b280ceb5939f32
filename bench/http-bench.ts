/**
 * HTTP benchmark on SQLite:
 *  1. enqueue throughput and latency: autocannon, 50 connections, `POST /v1/tasks/:name`
 *     against a server in a child process (so the load generator does not share its event loop);
 *  2. `request()` round trip p50/p99 at a fixed 500 requests/s, with a worker in the same process.
 *
 * Usage: `npx tsx bench/http-bench.ts [--seconds 10] [--rate 500] [--connections 50]`.
 * FERRY_BENCH_PROFILE=<dir> writes a CPU profile of the server process there.
 * Prints a JSON summary and a Markdown table row. Figures depend on the machine and its load.
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { z } from "zod";
import { createFerry, defineTask } from "../src/index.ts";
import { serve } from "../src/http/server.ts";
import { latencySummary } from "./support/stats.ts";

/** The part of autocannon's API used here (it ships no types). */
interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
}
const autocannon = createRequire(import.meta.url)("autocannon") as (options: Record<string, unknown>) => Promise<AutocannonResult>;

const TOKEN = "bench-token-0123456789abcdef";
const noop = defineTask("bench.noop", { schema: z.object({ n: z.number() }), run: async ({ n }) => ({ n }) });

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** Child mode: serve the API on a fresh SQLite file and report the URL. */
async function serveChild(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "ferry-http-bench-"));
  const ferry = createFerry({ transport: `sqlite://${join(dir, "ferry.db")}`, tasks: [noop] });
  const server = await serve(ferry, { port: 0, tokens: { read: [TOKEN] } });
  process.send!({ url: server.url });
  process.on("message", async () => {
    await server.close();
    await ferry.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
}

async function enqueueBench(seconds: number, connections: number): Promise<Record<string, number>> {
  const child = fork(fileURLToPath(import.meta.url), ["--child"], { execArgv: ["--import", "tsx", ...(process.env.FERRY_BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.FERRY_BENCH_PROFILE}`] : [])], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const url = await new Promise<string>((resolve) => child.once("message", (m) => resolve((m as { url: string }).url)));
  const options = {
    url: `${url}/v1/tasks/bench.noop`,
    method: "POST" as const,
    connections,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ payload: { n: 1 } }),
  };
  await autocannon({ ...options, duration: 2 }); // warm-up
  const result = await autocannon({ ...options, duration: seconds });
  child.send("stop");
  await new Promise((r) => child.once("exit", r));
  return {
    requestsPerSecond: Math.round(result.requests.average),
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
  };
}

async function requestBench(seconds: number, rate: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), "ferry-request-bench-"));
  const ferry = createFerry({ transport: `sqlite://${join(dir, "ferry.db")}`, tasks: [noop] });
  const worker = ferry.worker({ concurrency: 50 });
  await worker.start();
  const latencies: number[] = [];
  let failed = 0;
  const pending: Promise<void>[] = [];
  const one = async (n: number) => {
    const started = performance.now();
    try {
      await ferry.request(noop, { n }, { timeout: "10s" });
      latencies.push(performance.now() - started);
    } catch {
      failed++;
    }
  };
  for (let i = 0; i < 200; i++) pending.push(one(i)); // warm-up
  await Promise.all(pending.splice(0));
  latencies.length = 0;
  // Open loop: requests are started on schedule whether or not earlier ones finished.
  const total = seconds * rate;
  const begin = performance.now();
  for (let i = 0; i < total; i++) {
    const due = begin + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(one(i));
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - begin) / 1000;
  const stats = await ferry.requestStats();
  await ferry.close();
  rmSync(dir, { recursive: true, force: true });
  const summary = latencySummary(latencies);
  return { offeredPerSecond: rate, achievedPerSecond: Math.round(latencies.length / elapsed), completed: latencies.length, failed, pendingAfter: stats.pending, p50Ms: summary.p50Ms!, p99Ms: summary.p99Ms!, maxMs: summary.maxMs! };
}

if (process.argv.includes("--child")) {
  await serveChild();
} else {
  const seconds = arg("seconds", 10);
  const connections = arg("connections", 50);
  const rate = arg("rate", 500);
  const load = loadavg().map((l) => l.toFixed(1)).join(" ");
  const enqueue = await enqueueBench(seconds, connections);
  const request = await requestBench(seconds, rate);
  console.log(JSON.stringify({ loadAverageAtStart: load, enqueue, request }, null, 2));
  console.log(`| HTTP enqueue, ${connections} connections, ${seconds} s | ${enqueue.requestsPerSecond} req/s | p50 ${enqueue.latencyP50Ms} ms, p99 ${enqueue.latencyP99Ms} ms | non-2xx ${enqueue.non2xx} |`);
  console.log(`| request() at ${rate}/s, ${seconds} s | ${request.achievedPerSecond} req/s | p50 ${request.p50Ms} ms, p99 ${request.p99Ms} ms | failed ${request.failed} |`);
}
