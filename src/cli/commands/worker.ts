/**
 * `ferry worker`: run an app's handlers until SIGTERM or SIGINT, then drain.
 */
import { InvalidArgumentError, type Command } from "commander";
import { loadApp } from "../../bus/app-module.ts";
import type { WorkerOptions } from "../../worker/worker.ts";
import { ProcessPool } from "../../worker/pool/process-pool.ts";
import { claimPidFile, daemonize, DEFAULT_PID_FILE, isAlive, readPid, readStatus, stopDaemon, writeStatus } from "../daemon.ts";
import { formatRun, formatTable, type TextOut } from "../output.ts";
import { parseDurationOption, parseInteger, parseList } from "../parse.ts";
import { parseDuration } from "../../core/duration.ts";
import { FerryError } from "../../core/errors.ts";

/** Options of `ferry worker`. */
export interface WorkerCommandOptions {
  app: string;
  channels?: string[];
  concurrency?: number;
  lease?: string | number;
  grace?: string | number;
  quiet?: boolean;
  processes?: number;
  perProcess?: number;
  spares?: number;
  killGrace?: string | number;
  maxTasks?: number;
  maxMemory?: string;
  daemon?: boolean;
  pidFile?: string;
  logFile?: string;
}

/**
 * Run a worker for the app at `options.app` until a signal stops it. Resolves
 * once it drained and the app's transports are closed.
 */
export async function runWorker(options: WorkerCommandOptions, out: TextOut, err: TextOut): Promise<void> {
  if (options.daemon) {
    const pidFile = options.pidFile ?? DEFAULT_PID_FILE;
    const logFile = options.logFile ?? "./data/ferry-worker.log";
    const pid = await daemonize(process.argv, pidFile, logFile);
    out.write(`ferry worker: started in the background, pid ${pid}, pid file ${pidFile}, log ${logFile}\n`);
    return;
  }
  const ferry = await loadApp(options.app);
  const workerOptions: WorkerOptions = { handleSignals: true };
  let pool: ProcessPool | undefined;
  if (options.processes !== undefined && options.processes > 0) {
    pool = new ProcessPool({
      app: options.app,
      processes: options.processes,
      ...(options.perProcess === undefined ? {} : { perProcess: options.perProcess }),
      ...(options.spares === undefined ? {} : { spares: options.spares }),
      ...(options.killGrace === undefined ? {} : { killGrace: options.killGrace }),
      ...(options.maxTasks === undefined ? {} : { maxTasks: options.maxTasks }),
      ...(options.maxMemory === undefined ? {} : { maxMemory: options.maxMemory }),
    });
    workerOptions.executor = pool;
  }
  if (options.channels) workerOptions.channels = options.channels;
  if (options.concurrency !== undefined) workerOptions.concurrency = options.concurrency;
  if (options.lease !== undefined) workerOptions.lease = options.lease;
  if (options.grace !== undefined) workerOptions.shutdownGrace = options.grace;
  if (!options.quiet) workerOptions.onRun = (r) => out.write(`${formatRun(r)}\n`);
  ferry.events.on("warning", (w) => err.write(`ferry worker: warning ${w.code}: ${w.message}\n`));
  // A handler's forgotten promise must not end the worker (Node's default for an unhandled rejection).
  process.on("unhandledRejection", (reason) => {
    err.write(`ferry worker: warning UNHANDLED_REJECTION: a handler left a promise rejection unhandled: ${(reason as Error)?.message ?? String(reason)}\n`);
  });
  const worker = ferry.worker(workerOptions);
  const stopped = new Promise<void>((resolve) => {
    ferry.events.on("worker:state", (s) => {
      if (s.state === "draining") err.write(`ferry worker: draining (${s.active} running); send the signal again to stop at once\n`);
      if (s.state === "stopped") resolve();
    });
  });
  try {
    await worker.start();
  } catch (e) {
    await ferry.close().catch(() => undefined);
    throw e;
  }
  const channels = workerOptions.channels ?? ferry.channels();
  err.write(`ferry worker: pid ${process.pid}, channels ${channels.join(",")}, concurrency ${worker.concurrency}${pool ? `, ${pool.processes} executor processes` : ""}; SIGTERM or Ctrl-C drains and stops\n`);
  let release: (() => void) | undefined;
  let figures: NodeJS.Timeout | undefined;
  if (options.pidFile) {
    const pidFile = options.pidFile;
    release = claimPidFile(pidFile);
    const startedAt = Date.now();
    const write = () =>
      writeStatus(pidFile, { pid: process.pid, startedAt, updatedAt: Date.now(), state: worker.state, channels, concurrency: worker.concurrency, ...worker.stats, rss: process.memoryUsage.rss(), executors: pool?.stats() ?? [] });
    write();
    figures = setInterval(write, 1000);
  }
  await stopped;
  clearInterval(figures);
  release?.();
  await ferry.close();
  const { completed, failed } = worker.stats;
  err.write(`ferry worker: stopped after ${completed} completed and ${failed} failed runs\n`);
}

/** Add `ferry worker` to the program. */
export function workerCommand(program: Command, out: TextOut, err: TextOut): void {
  const worker = program
    .command("worker")
    .description("run the handlers of an app's tasks; drains gracefully on SIGTERM or SIGINT")
    .option("--app <path>", "app module that exports a Ferry (default export or `ferry`); required")
    .option("--channels <list>", "comma-separated channels to take work from (default: every channel the app uses)", parseList)
    .option("--concurrency <n>", "most handlers running at once (default 10)", parseInteger(1, 10_000))
    .option("--lease <duration>", 'lease length, renewed while a handler runs (default "30s")', parseDurationOption)
    .option("--grace <duration>", 'how long a drain waits for running handlers before aborting them (default "10s")', parseDurationOption)
    .option("-q, --quiet", "do not print a line per run")
    .option("--processes <n>", "run handlers in N executor child processes (0: in this process, the default)", parseInteger(0, 256))
    .option("--per-process <n>", "handlers one executor runs at once (default 1)", parseInteger(1, 10_000))
    .option("--spares <n>", "executors kept started and idle, to take a lost one's place at once (default 1)", parseInteger(0, 256))
    .option("--kill-grace <duration>", 'how long a handler past its timeout may take to stop before its executor is killed (default "5s")', parseDurationOption)
    .option("--max-tasks <n>", "replace an executor after N tasks (default never)", parseInteger(1, Number.MAX_SAFE_INTEGER))
    .option("--max-memory <size>", 'replace an executor, between tasks, once its RSS passes this, e.g. "512mb" (default never)', parseSize)
    .option("--daemon", "start in the background; writes --pid-file and logs to --log-file")
    .option("--pid-file <path>", `pid file (and <path>.json with live figures, refreshed every second); default with --daemon: ${DEFAULT_PID_FILE}`)
    .option("--log-file <path>", "where a --daemon worker writes its output (default ./data/ferry-worker.log)")
    .addHelpText("after", "\nExamples:\n  ferry worker --app ./app.ts --channels emails,integrations --concurrency 50\n  ferry worker --app ./app.ts --processes 4 --max-tasks 1000 --max-memory 512mb --daemon\n  ferry worker status\n  ferry worker stop")
    .action((opts: WorkerCommandOptions, cmd: Command) => {
      // --app is checked here, not by commander, so that `worker status` and `worker stop` need none.
      if (!opts.app) cmd.error("error: required option '--app <path>' not specified", { exitCode: 2, code: "commander.missingMandatoryOptionValue" });
      return runWorker(opts.daemon ? { ...opts, pidFile: opts.pidFile ?? DEFAULT_PID_FILE } : opts, out, err);
    });

  worker
    .command("status")
    .description(`show whether the worker of a pid file (--pid-file, default ${DEFAULT_PID_FILE}) runs, with its live figures and each executor's`)
    .option("--json", "print JSON")
    .action((o: { json?: boolean }, cmd: Command) => {
      const opts = { ...o, pidFile: pidFileOf(cmd) };
      const pid = readPid(opts.pidFile);
      const running = pid !== undefined && isAlive(pid);
      const status = running ? readStatus(opts.pidFile) : undefined;
      if (opts.json) {
        out.write(`${JSON.stringify({ running, pid: running ? pid : null, status: status ?? null })}\n`);
      } else if (!running) {
        out.write(pid === undefined ? `not running (no pid file at ${opts.pidFile})\n` : `not running (stale pid file ${opts.pidFile} names pid ${pid})\n`);
      }
      if (!running && !opts.json) throw new FerryError("NOT_FOUND", `no worker runs with pid file ${opts.pidFile}`);
      if (running && !opts.json) {
        out.write(`running: pid ${pid}`);
        if (status) {
          out.write(`, ${status.state}, up ${Math.round((Date.now() - status.startedAt) / 1000)} s, channels ${status.channels.join(",")}, concurrency ${status.concurrency}, active ${status.active}, completed ${status.completed}, failed ${status.failed}, rss ${Math.round(status.rss / 1048576)} MiB\n`);
          if (status.executors.length > 0) {
            const rows = status.executors.map((e) => ({ pid: String(e.pid), tasks: String(e.tasksDone), rss: `${Math.round(e.rss / 1048576)} MiB`, current: e.current.map((c) => `${c.task} ${c.id} ${Math.round(c.ageMs)} ms`).join("; ") || "-" }));
            out.write(`${formatTable(["pid", "tasks", "rss", "current"], rows.map((r) => [r.pid, r.tasks, r.rss, r.current]))}\n`);
          }
        } else out.write("\n");
      }
    });

  worker
    .command("stop")
    .description(`drain the worker of a pid file (--pid-file, default ${DEFAULT_PID_FILE}) and wait for it to exit (SIGTERM)`)
    .option("--timeout <duration>", 'how long to wait for the drain (default "60s")', parseDurationOption)
    .action(async (o: { timeout?: string | number }, cmd: Command) => {
      const opts = { ...o, pidFile: pidFileOf(cmd) };
      const pid = await stopDaemon(opts.pidFile, parseDuration(opts.timeout ?? "60s"));
      out.write(pid === undefined ? "no worker was running\n" : `worker ${pid} drained and stopped\n`);
    });
}

/** `--pid-file` given to `ferry worker` (before or after `status`/`stop`), or the default. */
function pidFileOf(cmd: Command): string {
  return (cmd.parent?.opts() as { pidFile?: string } | undefined)?.pidFile ?? DEFAULT_PID_FILE;
}

function parseSize(value: string): string {
  if (!/^\d+(?:\.\d+)?\s*(b|kb|mb|gb)?$/i.test(value.trim())) throw new InvalidArgumentError('expected a size like "512mb" or a number of bytes');
  return value.trim();
}
