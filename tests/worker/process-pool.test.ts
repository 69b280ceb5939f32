import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createFerry, MemoryTransport, type RunReport } from "../../src/index.ts";
import { ProcessPool } from "../../src/worker/pool/process-pool.ts";
import { tasks } from "../fixtures/pool-app.ts";

const APP = fileURLToPath(new URL("../fixtures/pool-app.ts", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const opened: Array<{ close(): Promise<void> }> = [];

function setup(pool: ProcessPool, concurrency = 4) {
  opened.push(pool);
  const transport = new MemoryTransport();
  const ferry = createFerry({ transport, tasks: Object.values(tasks) });
  const runs: RunReport[] = [];
  ferry.events.on("run", (r) => runs.push(r));
  const worker = ferry.worker({ concurrency, executor: pool, shutdownGrace: 1000 });
  opened.push(ferry);
  return { transport, ferry, runs, worker };
}

describe("process pool", () => {
  // A failed assertion must not leave executors behind.
  afterEach(async () => {
    await Promise.all(opened.splice(0).reverse().map((o) => o.close()));
  });

  it("runs handlers in child processes and returns their results", async () => {
    const pool = new ProcessPool({ app: APP, processes: 2 });
    const { ferry, runs, worker } = setup(pool);
    await ferry.dispatchMany(tasks.pid, Array.from({ length: 20 }, (_, n) => ({ n })));
    // Runs go only to executors that are ready; wait for both so both take work.
    await pool.ready();
    await worker.start();
    await until(() => runs.length === 20, "20 runs");
    assert.ok(runs.every((r) => r.status === "completed"));
    const figures: number[] = [];
    ferry.events.on("pool:executors", (e) => figures.push(e.executors.reduce((n, x) => n + x.tasksDone, 0)));
    await until(() => figures.length > 0 && figures.at(-1) === 20, "executor figures counting 20 tasks", 5000);
    const pids = new Set(runs.map((r) => (r.result as { pid: number }).pid));
    assert.ok(!pids.has(process.pid), "no handler ran in the worker process");
    assert.equal(pids.size, 2, "both executors took work");
    assert.deepEqual(pool.stats().map((e) => e.role).sort(), ["regular", "regular", "spare"], "one idle spare waits to replace an executor");
    assert.deepEqual(runs.map((r) => (r.result as { n: number }).n).sort((a, b) => a - b), Array.from({ length: 20 }, (_, n) => n));
    await ferry.close();
  });

  it("kills a handler that ignores its abort, and dead-letters it after exactly N attempts while others flow", async () => {
    const pool = new ProcessPool({ app: APP, processes: 2, killGrace: 100 });
    const { ferry, transport, runs, worker } = setup(pool);
    const poison = await ferry.dispatch(tasks.hang, {});
    await ferry.dispatchMany(tasks.pid, Array.from({ length: 30 }, (_, n) => ({ n })));
    await worker.start();
    await until(() => runs.filter((r) => r.task === "pool.pid").length === 30 && runs.some((r) => r.status === "dead"), "all runs");
    // Its second attempt waits (snoozed, no attempt used) for the quarantine executor.
    const hangRuns = runs.filter((r) => r.task === "pool.hang" && r.status !== "snoozed");
    assert.deepEqual(hangRuns.map((r) => [r.status, r.error?.code]), [["retrying", "TIMEOUT"], ["dead", "TIMEOUT"]]);
    assert.equal((await transport.get(poison.id))?.state, "dead");
    await until(() => pool.spawned >= 4, "the two hung executors to be replaced");
    assert.ok(runs.filter((r) => r.task === "pool.pid").every((r) => r.status === "completed"));
    await ferry.close();
  });

  it("a handler that calls process.exit costs its attempt only; dead after exactly maxAttempts; its retries run in quarantine", async () => {
    const pool = new ProcessPool({ app: APP, processes: 2 });
    const { ferry, transport, runs, worker } = setup(pool);
    const poison = await ferry.dispatch(tasks.exit, {});
    await ferry.dispatchMany(tasks.pid, Array.from({ length: 20 }, (_, n) => ({ n })));
    await worker.start();
    await until(() => runs.some((r) => r.status === "dead") && runs.filter((r) => r.task === "pool.pid").length === 20, "all runs");
    const exits = runs.filter((r) => r.task === "pool.exit" && r.status !== "snoozed");
    assert.deepEqual(exits.map((r) => [r.attempt, r.status]), [[1, "retrying"], [2, "retrying"], [3, "dead"]]);
    assert.ok(runs.some((r) => r.task === "pool.exit" && r.status === "snoozed"), "attempts after the first waited for the quarantine executor without using an attempt");
    // 2 executors + 1 spare, the spare's replacement after attempt 1, one quarantine executor each for attempts 2 and 3.
    assert.equal(pool.spawned, 6, "attempts 2 and 3 killed quarantine executors, not regular ones");
    assert.ok(exits.every((r) => r.error?.code === "WORKER_CRASHED"));
    assert.equal((await transport.get(poison.id))?.errors.length, 3);
    assert.deepEqual(runs.filter((r) => r.task === "pool.pid" && r.status !== "completed").map((r) => [r.status, r.error?.message]), [], "other tasks lost nothing");
    await ferry.close();
  });

  it("survives a handler that runs out of memory", async () => {
    const pool = new ProcessPool({ app: APP, processes: 1, execArgv: ["--max-old-space-size=64"] });
    const { ferry, runs, worker } = setup(pool, 1);
    await ferry.dispatch(tasks.oom, {});
    await ferry.dispatch(tasks.pid, { n: 1 });
    await worker.start();
    await until(() => runs.some((r) => r.status === "dead") && runs.some((r) => r.task === "pool.pid"), "both outcomes", 60_000);
    assert.deepEqual(runs.filter((r) => r.task === "pool.oom" && r.status !== "snoozed").map((r) => r.error?.code), ["WORKER_CRASHED", "WORKER_CRASHED"]);
    assert.equal(runs.find((r) => r.task === "pool.pid")?.status, "completed");
    await ferry.close();
  });

  it("keeps executors alive through an unhandled rejection", async () => {
    const pool = new ProcessPool({ app: APP, processes: 1, spares: 0 });
    const { ferry, runs, worker } = setup(pool, 1);
    await ferry.dispatch(tasks.unhandled, {});
    await ferry.dispatch(tasks.pid, {});
    await worker.start();
    await until(() => runs.length === 2, "two runs");
    assert.deepEqual(runs.map((r) => r.status), ["completed", "completed"]);
    assert.equal(pool.spawned, 1, "the executor was not replaced");
    await ferry.close();
  });

  it("recycles an executor after maxTasks without losing or repeating work", async () => {
    const pool = new ProcessPool({ app: APP, processes: 1, maxTasks: 5 });
    const { ferry, runs, worker } = setup(pool, 1);
    await ferry.dispatchMany(tasks.pid, Array.from({ length: 23 }, (_, n) => ({ n })));
    await worker.start();
    await until(() => runs.length === 23, "23 runs");
    assert.ok(runs.every((r) => r.status === "completed" && r.attempt === 1));
    assert.equal(new Set(runs.map((r) => (r.result as { n: number }).n)).size, 23);
    assert.ok(new Set(runs.map((r) => (r.result as { pid: number }).pid)).size >= 5, "a new executor every 5 tasks");
    await ferry.close();
  });

  it("keeps RSS bounded over 10,000 leaking tasks under maxMemory", async () => {
    const pool = new ProcessPool({ app: APP, processes: 2, perProcess: 4, maxMemory: "160mb" });
    const { ferry, runs, worker } = setup(pool, 8);
    let peak = 0;
    const sampler = setInterval(() => {
      const total = pool.stats().reduce((sum, s) => sum + s.rss, 0);
      peak = Math.max(peak, total);
    }, 20);
    await ferry.dispatchMany(tasks.leak, Array.from({ length: 10_000 }, () => ({})));
    await worker.start();
    await until(() => runs.length === 10_000, "10,000 runs", 120_000);
    clearInterval(sampler);
    assert.ok(runs.every((r) => r.status === "completed"));
    // 10,000 x 256 KiB = 2.5 GiB leaked in all; recycling keeps each executor near its bound.
    assert.ok(peak < 3 * 160 * 1024 * 1024, `pool RSS peaked at ${Math.round(peak / 1048576)} MiB`);
    assert.ok(pool.spawned > 4, `executors were recycled (${pool.spawned} spawned)`);
    await ferry.close();
  });

  it("refuses bad options", () => {
    assert.throws(() => new ProcessPool({} as never), { code: "INVALID_OPTION" });
    assert.throws(() => new ProcessPool({ app: APP, processes: 0 }), { code: "INVALID_OPTION" });
    assert.throws(() => new ProcessPool({ app: APP, spares: -1 }), { code: "INVALID_OPTION" });
    assert.throws(() => new ProcessPool({ app: APP, maxMemory: "lots" }), { code: "INVALID_OPTION" });
  });
});
