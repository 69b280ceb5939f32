/**
 * A chaos worker process, forked with `--import tsx` by the supervisor.
 *
 *   worker-process.ts '<json WorkerProcessConfig>'
 *
 * Builds a Ferry on the given transport URL, registers the chaos tasks, runs
 * one worker, and reports `ready` and warnings over IPC. SIGTERM (or losing
 * the parent) stops it gracefully; SIGKILL is what the soak is about.
 *
 * With `pool`, handlers run in executor child processes (`ProcessPool`, as
 * `ferry worker --processes N`) loading `pool-app.ts`; this process keeps the
 * leases and settles every run.
 */
import { fileURLToPath } from "node:url";
import { createFerry, ProcessPool } from "../../src/index.ts";
import { chaosTasks } from "./chaos-tasks.ts";
import { Ledger } from "./ledger.ts";

/** What the supervisor tells a worker process. */
export interface WorkerProcessConfig {
  /** Transport URL. */
  url: string;
  /** Ledger file. */
  ledger: string;
  channels: string[];
  concurrency: number;
  /** Lease, e.g. `"2s"`. */
  lease: string;
  /** Install a process-level `unhandledRejection` handler. Default true. */
  guardRejections?: boolean;
  /** Run handlers in executor processes. Default: in this process. */
  pool?: {
    processes: number;
    /** `--max-old-space-size` of each executor, MB. Default: Node's own. */
    heapMb?: number;
    /** The pool's `killGrace`. Default the pool's (5 s). */
    killGrace?: string;
    /** Idle executors kept started. Default the pool's (1). */
    spares?: number;
    /** The executors' ledger `synchronous` setting. Default `"FULL"`. */
    ledgerSync?: "FULL" | "NORMAL";
  };
}

/** Messages a worker process sends its supervisor. */
export type WorkerProcessReport =
  | { type: "ready"; pid: number; bootMs: number; startMs: number }
  | { type: "warning"; code: string; message: string }
  | { type: "rejection"; message: string }
  | { type: "lease-lost"; id: string }
  | { type: "pool"; spawned: number };

const config = JSON.parse(process.argv[2] ?? "{}") as WorkerProcessConfig;
const report = (r: WorkerProcessReport) => {
  if (process.connected) process.send!(r);
};

if (config.guardRejections !== false) {
  process.on("unhandledRejection", (reason) => report({ type: "rejection", message: String((reason as Error)?.message ?? reason) }));
}

const ledger = new Ledger(config.ledger);
const ferry = createFerry({ transport: config.url, tasks: chaosTasks(ledger) });
ferry.events.on("warning", (w) => report({ type: "warning", code: w.code, message: w.message }));
ferry.events.on("lease:lost", (e) => report({ type: "lease-lost", id: e.id }));
let pool: ProcessPool | undefined;
if (config.pool) {
  process.env.FERRY_CHAOS_LEDGER = config.ledger;
  process.env.FERRY_CHAOS_LEDGER_SYNC = config.pool.ledgerSync ?? "FULL";
  pool = new ProcessPool({
    app: fileURLToPath(new URL("./pool-app.ts", import.meta.url)),
    processes: config.pool.processes,
    ...(config.pool.heapMb ? { execArgv: [`--max-old-space-size=${config.pool.heapMb}`] } : {}),
    ...(config.pool.killGrace ? { killGrace: config.pool.killGrace } : {}),
    ...(config.pool.spares === undefined ? {} : { spares: config.pool.spares }),
  });
  await pool.ready();
}
const worker = ferry.worker({ channels: config.channels, concurrency: config.concurrency, lease: config.lease, shutdownGrace: "1s", ...(pool ? { executor: pool } : {}) });

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (pool) report({ type: "pool", spawned: pool.spawned });
  await ferry.close();
  ledger.close();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.on("disconnect", () => void stop());

const bootMs = Math.round(performance.now());
await worker.start();
report({ type: "ready", pid: process.pid, bootMs, startMs: Math.round(performance.now()) - bootMs });
