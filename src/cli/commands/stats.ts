/**
 * `ferry stats`: message counts per channel and state.
 */
import type { Command } from "commander";
import { FerryError } from "../../core/errors.ts";
import { isInspectable, type ChannelCounts } from "../../transport/types.ts";
import { formatTable, type TextOut } from "../output.ts";
import { openTarget, type TargetOptions } from "../target.ts";
import { DEFAULT_PID_FILE, isAlive, readPid, readStatus } from "../daemon.ts";

/** Options of `ferry stats`. */
export interface StatsOptions extends TargetOptions {
  json?: boolean;
}

/** One row of `ferry stats`: a channel's counts and the transport that holds it. */
export interface StatsRow extends ChannelCounts {
  transport: string;
}

/**
 * Counts per channel and state, from every transport of the target.
 * @throws FerryError `NOT_SUPPORTED` when a transport cannot be inspected
 */
export async function collectStats(options: TargetOptions): Promise<StatsRow[]> {
  const target = await openTarget(options);
  try {
    const rows: StatsRow[] = [];
    for (const { transport, channels, label } of target.transports) {
      if (!isInspectable(transport)) throw new FerryError("NOT_SUPPORTED", `the ${transport.kind} transport cannot count its messages`);
      for (const c of await transport.counts()) {
        // With --app, channels of the same store that the app does not use are still shown: they are real work.
        rows.push({ transport: label, ...c });
      }
      for (const channel of channels) {
        if (!rows.some((r) => r.channel === channel && r.transport === label)) {
          rows.push({ transport: label, channel, waiting: 0, delayed: 0, active: 0, completed: 0, cancelled: 0, dead: 0 });
        }
      }
    }
    return rows.sort((a, b) => a.channel.localeCompare(b.channel) || a.transport.localeCompare(b.transport));
  } finally {
    await target.close();
  }
}

/** Add `ferry stats` to the program. */
export function statsCommand(program: Command, out: TextOut): void {
  program
    .command("stats")
    .description("count messages per channel and state")
    .option("--app <path>", "app module that exports a Ferry: counts every transport it uses")
    .option("--transport <url>", "transport URL (default: $FERRY_URL, else sqlite://./data/ferry.db)")
    .option("--json", "print JSON instead of a table")
    .option("--pid-file <path>", `also show the live figures of the worker with this pid file (default ${DEFAULT_PID_FILE}, when it runs)`)
    .action(async (opts: StatsOptions & { pidFile?: string }) => {
      const rows = await collectStats(opts);
      const pidFile = opts.pidFile ?? DEFAULT_PID_FILE;
      const pid = readPid(pidFile);
      const worker = pid !== undefined && isAlive(pid) ? readStatus(pidFile) : undefined;
      if (opts.json) {
        out.write(`${JSON.stringify(worker ? { channels: rows, worker } : rows, null, 2)}\n`);
        return;
      }
      if (worker) {
        out.write(`worker pid ${worker.pid}: ${worker.state}, active ${worker.active}, completed ${worker.completed}, failed ${worker.failed}\n`);
        if (worker.executors.length > 0) {
          const execRows = worker.executors.map((e) => [String(e.pid), e.tasksDone, `${Math.round(e.rss / 1048576)} MiB`, e.current.map((c) => `${c.task} ${c.id} ${Math.round(c.ageMs)} ms`).join("; ") || "-"]);
          out.write(`${formatTable(["executor", "tasks", "rss", "current"], execRows)}\n\n`);
        }
      }
      if (rows.length === 0) {
        out.write("no messages\n");
        return;
      }
      const many = new Set(rows.map((r) => r.transport)).size > 1;
      const headers = ["channel", ...(many ? ["transport"] : []), "waiting", "delayed", "active", "completed", "cancelled", "dead"];
      const body = rows.map((r) => [r.channel, ...(many ? [r.transport] : []), r.waiting, r.delayed, r.active, r.completed, r.cancelled, r.dead]);
      out.write(`${formatTable(headers, body)}\n`);
    });
}
