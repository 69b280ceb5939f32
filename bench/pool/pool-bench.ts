/**
 * Throughput of handlers in executor processes (`--processes 2`) against in-process,
 * for CPU-bound (5 ms of computation) and I/O-bound (20 ms wait) handlers, on the
 * SQLite transport. Prints a JSON line per measurement and a Markdown table.
 *
 *   npx tsx bench/pool/pool-bench.ts [--tasks 2000]
 */
import { mkdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createFerry, ProcessPool, type Executor } from "../../src/index.ts";
import { cpu, io } from "./pool-app.ts";

const APP = fileURLToPath(new URL("./pool-app.ts", import.meta.url));
const argTasks = process.argv.indexOf("--tasks");
const N = argTasks > 0 ? Number(process.argv[argTasks + 1]) : 2000;

interface Row { handler: string; mode: string; concurrency: number; tasksPerSec: number }

async function measure(kind: "cpu" | "io", mode: "in-process" | "processes=2"): Promise<Row> {
  const dir = ".bench-tmp/pool";
  mkdirSync(dir, { recursive: true });
  const file = `${dir}/${kind}-${mode}.db`;
  for (const s of ["", "-wal", "-shm"]) rmSync(file + s, { force: true });
  const task = kind === "cpu" ? cpu : io;
  const concurrency = kind === "cpu" ? 4 : 64;
  const ferry = createFerry({ transport: `sqlite://${file}`, tasks: [cpu, io] });
  await ferry.dispatchMany(task, Array.from({ length: N }, () => ({ ms: kind === "cpu" ? 5 : 20 })));
  let executor: Executor | undefined;
  let pool: ProcessPool | undefined;
  if (mode === "processes=2") {
    pool = new ProcessPool({ app: APP, processes: 2, perProcess: concurrency / 2 });
    await pool.ready();
    executor = pool;
  }
  let done = 0;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  ferry.events.on("run", () => {
    if (++done === N) finish();
  });
  const worker = ferry.worker({ concurrency, ...(executor ? { executor } : {}) });
  const started = performance.now();
  await worker.start();
  await all;
  const seconds = (performance.now() - started) / 1000;
  await ferry.close();
  for (const s of ["", "-wal", "-shm"]) rmSync(file + s, { force: true });
  const row = { handler: kind === "cpu" ? "CPU-bound (5 ms compute)" : "I/O-bound (20 ms wait)", mode, concurrency, tasksPerSec: Math.round(N / seconds) };
  console.log(JSON.stringify({ bench: "pool", tasks: N, ...row }));
  return row;
}

const rows: Row[] = [];
for (const kind of ["cpu", "io"] as const) for (const mode of ["in-process", "processes=2"] as const) rows.push(await measure(kind, mode));
console.log(`\n| handler | mode | concurrency | tasks/s |\n|---|---|---:|---:|`);
for (const r of rows) console.log(`| ${r.handler} | ${r.mode} | ${r.concurrency} | ${r.tasksPerSec.toLocaleString("en-US")} |`);
