/**
 * Run by `process-pool-priority.test.ts` as an unprivileged user: a pool of one
 * executor runs one task and prints, as one JSON line, the warnings it gave and
 * whether the task completed in an executor process.
 */
import { fileURLToPath } from "node:url";
import { createFerry, MemoryTransport, type RunReport } from "../../src/index.ts";
import { ProcessPool } from "../../src/worker/pool/process-pool.ts";
import { tasks } from "../fixtures/pool-app.ts";

const APP = fileURLToPath(new URL("../fixtures/pool-app.ts", import.meta.url));
const ferry = createFerry({ transport: new MemoryTransport(), tasks: Object.values(tasks) });
const warnings: string[] = [];
ferry.events.on("warning", (w) => warnings.push(w.code));
const pool = new ProcessPool({ app: APP, processes: 1, spares: 0, events: ferry.events });
const runs: RunReport[] = [];
ferry.events.on("run", (r) => runs.push(r));
const worker = ferry.worker({ concurrency: 1, executor: pool });
await ferry.dispatch(tasks.pid, { n: 1 });
await pool.ready();
await worker.start();
const deadline = Date.now() + 30_000;
while (runs.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
const ranElsewhere = runs[0]?.status === "completed" && (runs[0].result as { pid: number }).pid !== process.pid;
await worker.stop();
await pool.close();
await ferry.close();
process.stdout.write(`${JSON.stringify({ uid: process.getuid?.(), warnings, ranElsewhere })}\n`);
