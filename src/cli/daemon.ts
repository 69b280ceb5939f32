/**
 * Daemon control for `ferry worker`: a pid file, a status file the running
 * worker refreshes every second (its figures and each executor's), and
 * `status` / `stop` that read them.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { FerryError } from "../core/errors.ts";
import type { ExecutorStats } from "../worker/pool/pool-options.ts";

/** The default pid file of `ferry worker --daemon`. */
export const DEFAULT_PID_FILE = "./data/ferry-worker.pid";

/** What a running worker writes beside its pid file. */
export interface WorkerStatus {
  pid: number;
  startedAt: number;
  updatedAt: number;
  state: string;
  channels: string[];
  concurrency: number;
  active: number;
  completed: number;
  failed: number;
  rss: number;
  executors: ExecutorStats[];
}

/** The status file that goes with a pid file. */
export function statusFileOf(pidFile: string): string {
  return `${pidFile}.json`;
}

/** True when a process with this pid is alive. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The pid in a pid file, or undefined when there is none. */
export function readPid(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Claim a pid file for this process.
 * @throws FerryError `CONFIG_INVALID` when a live worker already holds it.
 */
export function claimPidFile(pidFile: string): () => void {
  const existing = readPid(pidFile);
  if (existing !== undefined && existing !== process.pid && isAlive(existing)) {
    throw new FerryError("CONFIG_INVALID", `a worker (pid ${existing}) already runs with pid file ${pidFile}; stop it with "ferry worker stop --pid-file ${pidFile}" or choose another --pid-file`);
  }
  mkdirSync(dirname(resolve(pidFile)), { recursive: true });
  writeFileSync(pidFile, `${process.pid}\n`);
  return () => {
    if (readPid(pidFile) === process.pid) rmSync(pidFile, { force: true });
    rmSync(statusFileOf(pidFile), { force: true });
  };
}

/** Write the status file atomically (write, then rename). */
export function writeStatus(pidFile: string, status: WorkerStatus): void {
  const file = statusFileOf(pidFile);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(status));
  renameSync(tmp, file);
}

/** The last status a worker wrote, if any. */
export function readStatus(pidFile: string): WorkerStatus | undefined {
  try {
    return JSON.parse(readFileSync(statusFileOf(pidFile), "utf8")) as WorkerStatus;
  } catch {
    return undefined;
  }
}

/**
 * Start `ferry worker` again as a detached background process with the same
 * arguments minus `--daemon`, its output appended to `logFile`. Resolves with
 * its pid once it wrote its pid file.
 */
export async function daemonize(argv: readonly string[], pidFile: string, logFile: string): Promise<number> {
  const existing = readPid(pidFile);
  if (existing !== undefined && isAlive(existing)) {
    throw new FerryError("CONFIG_INVALID", `a worker (pid ${existing}) already runs with pid file ${pidFile}`);
  }
  mkdirSync(dirname(resolve(logFile)), { recursive: true });
  const log = openSync(logFile, "a");
  const args = argv.slice(1).filter((a) => a !== "--daemon");
  const child = spawn(process.execPath, [...process.execArgv, ...args], { detached: true, stdio: ["ignore", log, log], env: process.env });
  closeSync(log);
  child.unref();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (readPid(pidFile) === child.pid) return child.pid!;
    if (child.exitCode !== null || (child.pid !== undefined && !isAlive(child.pid))) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new FerryError("WORKER_CRASHED", `the background worker did not start; see ${logFile}`);
}

/**
 * Ask the worker holding `pidFile` to drain and stop (SIGTERM), and wait up to
 * `timeoutMs` for it to exit. Resolves with its pid, or undefined if none ran.
 */
export async function stopDaemon(pidFile: string, timeoutMs: number): Promise<number | undefined> {
  const pid = readPid(pidFile);
  if (pid === undefined || !isAlive(pid)) {
    rmSync(pidFile, { force: true });
    return undefined;
  }
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new FerryError("TIMEOUT", `worker ${pid} is still draining after ${timeoutMs} ms; wait, or send SIGKILL (its leases return to the queue when they end)`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return pid;
}
