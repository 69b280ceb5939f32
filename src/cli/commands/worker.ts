/**
 * `ferry worker`: run an app's handlers until SIGTERM or SIGINT, then drain.
 */
import type { Command } from "commander";
import { loadApp } from "../../bus/app-module.ts";
import type { WorkerOptions } from "../../worker/worker.ts";
import { formatRun, type TextOut } from "../output.ts";
import { parseDurationOption, parseInteger, parseList } from "../parse.ts";

/** Options of `ferry worker`. */
export interface WorkerCommandOptions {
  app: string;
  channels?: string[];
  concurrency?: number;
  lease?: string | number;
  grace?: string | number;
  quiet?: boolean;
}

/**
 * Run a worker for the app at `options.app` until a signal stops it. Resolves
 * once it drained and the app's transports are closed.
 */
export async function runWorker(options: WorkerCommandOptions, out: TextOut, err: TextOut): Promise<void> {
  const ferry = await loadApp(options.app);
  const workerOptions: WorkerOptions = { handleSignals: true };
  if (options.channels) workerOptions.channels = options.channels;
  if (options.concurrency !== undefined) workerOptions.concurrency = options.concurrency;
  if (options.lease !== undefined) workerOptions.lease = options.lease;
  if (options.grace !== undefined) workerOptions.shutdownGrace = options.grace;
  if (!options.quiet) workerOptions.onRun = (r) => out.write(`${formatRun(r)}\n`);
  ferry.events.on("warning", (w) => err.write(`ferry worker: warning ${w.code}: ${w.message}\n`));
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
  err.write(`ferry worker: pid ${process.pid}, channels ${channels.join(",")}, concurrency ${worker.concurrency}; SIGTERM or Ctrl-C drains and stops\n`);
  await stopped;
  await ferry.close();
  const { completed, failed } = worker.stats;
  err.write(`ferry worker: stopped after ${completed} completed and ${failed} failed runs\n`);
}

/** Add `ferry worker` to the program. */
export function workerCommand(program: Command, out: TextOut, err: TextOut): void {
  program
    .command("worker")
    .description("run the handlers of an app's tasks; drains gracefully on SIGTERM or SIGINT")
    .requiredOption("--app <path>", "app module that exports a Ferry (default export or `ferry`)")
    .option("--channels <list>", "comma-separated channels to take work from (default: every channel the app uses)", parseList)
    .option("--concurrency <n>", "most handlers running at once (default 10)", parseInteger(1, 10_000))
    .option("--lease <duration>", 'lease length, renewed while a handler runs (default "30s")', parseDurationOption)
    .option("--grace <duration>", 'how long a drain waits for running handlers before aborting them (default "10s")', parseDurationOption)
    .option("-q, --quiet", "do not print a line per run")
    .addHelpText("after", "\nExample:\n  ferry worker --app ./app.ts --channels emails,integrations --concurrency 50")
    .action((opts: WorkerCommandOptions) => runWorker(opts, out, err));
}
