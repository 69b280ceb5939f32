/**
 * The options of the process pool and the figures it reports per executor.
 */
import type { Duration } from "../../core/duration.ts";
import { FerryError } from "../../core/errors.ts";
import type { EventStream, FerryEvents } from "../../core/events.ts";

/** Options of the `ProcessPool` (`process-pool.ts`). */
export interface ProcessPoolOptions {
  /** Path of the app module whose Ferry defines the tasks (the children import it). */
  app: string;
  /** Executor processes. Default 2. */
  processes?: number;
  /**
   * Executors kept started and idle beyond `processes`, so one that dies or is replaced is taken
   * over at once instead of after a child's start-up. Default 1.
   */
  spares?: number;
  /** Handlers one child runs at once. Default 1 (as seed 004); raise it for I/O-bound work. */
  perProcess?: number;
  /** Replace a child after this many tasks. Default: never. */
  maxTasks?: number;
  /** Replace a child, between tasks, once its RSS passes this many bytes (or "512mb"). Default: never. */
  maxMemory?: number | string;
  /** After a timeout or abort, how long a handler may take to stop before its child is killed. Default `"5s"`. */
  killGrace?: Duration;
  /** Node flags for the children, e.g. `["--max-old-space-size=256"]`. Default none. */
  execArgv?: string[];
  /** Where per-executor figures and warnings go. Default: none. */
  events?: EventStream<FerryEvents>;
}

/** Live figures of one executor. */
export interface ExecutorStats {
  pid: number;
  tasksDone: number;
  rss: number;
  /** Running now: task name, message id, and for how long (ms). */
  current: Array<{ task: string; id: string; ageMs: number }>;
  retiring: boolean;
  /** Runs picked for it, including those not yet handed over. */
  load: number;
  /** True once it loaded the app. */
  ready: boolean;
  /** `regular` takes work, `spare` waits to replace one, `quarantine` runs messages that killed or hung an executor. */
  role: "regular" | "spare" | "quarantine";
}

/** Bytes from a number or text such as `"512mb"`. @throws FerryError `INVALID_OPTION` */
export function parseBytes(value: number | string): number {
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return value;
  const m = typeof value === "string" ? /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(value.trim()) : null;
  if (!m) throw new FerryError("INVALID_OPTION", `maxMemory must be bytes or text like "512mb", got ${String(value)}`, { details: { option: "maxMemory" } });
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? "b").toLowerCase() as "b"];
  return Math.round(Number(m[1]) * unit);
}
