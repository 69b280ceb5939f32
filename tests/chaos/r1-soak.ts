/**
 * R1, the kill -9 soak: N no-op jobs, W worker processes x concurrency C, one
 * random worker SIGKILLed every K ms and restarted. Reports lost (must be 0),
 * unexpected (must be 0), duplicates against the ceiling kills x C, throughput,
 * and whether a sample of completed jobs stayed completed.
 */
import { join } from "node:path";
import { createTransport, isInspectable, type Inspectable, type MessageState, type Transport } from "../../src/index.ts";
import { CHAOS_TASKS } from "./chaos-tasks.ts";
import { check, type CheckResult } from "./checker.ts";
import { EnqueueHistory } from "./history.ts";
import { Ledger } from "./ledger.ts";
import { produce } from "./producer.ts";
import { Supervisor } from "./supervisor.ts";
import type { Target } from "./targets.ts";

/** Options of {@link runR1}. */
export interface R1Options {
  target: Target;
  /** Jobs to enqueue. Default 10,000. */
  jobs?: number;
  /** Enqueue for this long (ms) instead of a fixed count, keeping at most 5,000 unfinished. Default: use `jobs`. */
  durationMs?: number;
  /** Worker processes. Default 2. */
  workers?: number;
  /** Concurrency per worker. Default 8. */
  concurrency?: number;
  /** SIGKILL a random worker this often (ms); 0 for an undisturbed run. Default 1000. */
  killEveryMs?: number;
  /** Worker lease. Default `"2s"`. */
  lease?: string;
  /** Give up waiting for the drain after this long (ms). Default the larger of 300,000 and 10 ms per job. */
  deadlineMs?: number;
  /** Worker URLs, one per worker (cycled), when they differ from the producer's (a fault proxy). Default `[target.url]`. */
  workerUrls?: string[];
  /** Called about once a second while running (progress, faults). */
  onTick?: (progress: { done: number; acked: number; kills: number; elapsedMs: number }) => void | Promise<void>;
  /** Called once the workers are up and the clock starts; `doneCount` reads the ledger. */
  onStart?: (control: { doneCount: () => number; doneCountOf: (slot: number) => number; stats: () => { kills: number; crashes: number } }) => void;
  /** Print worker stderr. Default false. */
  verbose?: boolean;
}

/** What R1 measured. */
export interface R1Result {
  transport: string;
  jobs: number;
  workers: number;
  concurrency: number;
  killEveryMs: number;
  kills: number;
  crashes: number;
  restarts: number;
  /** True when every acknowledged job completed before the deadline. */
  drained: boolean;
  elapsedMs: number;
  /** Completed jobs per second, first send to last completion. */
  throughput: number;
  check: CheckResult;
  /** Duplicates allowed: kills x concurrency (0 when nothing was killed). */
  ceiling: number;
  /** Jobs seen `completed` during the run, read again 3 s later (past a lease) and at the end. */
  completedSampled: number;
  /** Of those, how many were read in another state (must be 0). */
  leftCompleted: number;
  /** Of those, how many were gone when read again (deleted by retention). */
  pruned: number;
  /** States of lost jobs at the end, for a repro. */
  lostStates: Record<string, number>;
  warnings: Record<string, number>;
  /** Completions refused by fencing (the worker had lost its lease). */
  leaseLost: number;
  /** Median ms from fork to a worker taking work (restarts included). */
  startupMedianMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run the soak once on `target`. */
export async function runR1(options: R1Options): Promise<R1Result> {
  const jobs = options.jobs ?? 10_000;
  const workers = options.workers ?? 2;
  const concurrency = options.concurrency ?? 8;
  const killEveryMs = options.killEveryMs ?? 1000;
  const channel = "chaos-r1";
  const ledgerPath = join(options.target.dir, `ledger-r1-${killEveryMs > 0 ? "kills" : "calm"}-${Date.now()}.db`);
  const ledger = new Ledger(ledgerPath);
  let ledgerOpen = true;
  const history = new EnqueueHistory();
  const transport: Transport = await createTransport(options.target.url);
  const urls = options.workerUrls ?? [options.target.url];
  const config = (i: number) => ({ url: urls[i % urls.length]!, ledger: ledgerPath, channels: [channel], concurrency, lease: options.lease ?? "2s" });
  const supervisor = new Supervisor(Array.from({ length: workers }, (_, i) => ({ config: config(i) })), { verbose: options.verbose ?? false });
  // Completed jobs sampled during the run: read again once after 3 s (past a lease) and at the end.
  const seenCompleted = new Map<string, { at: number; rechecked: boolean }>();
  const leftSet = new Set<string>();
  const prunedSet = new Set<string>();
  const recheck = async (id: string) => {
    const record = await (transport as Transport & Inspectable).get(id);
    if (record === null) prunedSet.add(id);
    else if (record.state !== "completed") leftSet.add(id);
  };
  let killer: NodeJS.Timeout | undefined;
  try {
    await supervisor.start();
    const started = Date.now();
    let lastDone = 0;
    // Fault loops may outlive the run by a moment: after the ledger closes they read the last count.
    const doneCount = () => (ledgerOpen ? (lastDone = ledger.doneCount()) : lastDone);
    const doneCountOf = (slot: number) => {
      const pid = supervisor.pid(slot);
      return ledgerOpen && pid !== undefined ? ledger.doneCountOf(pid) : 0;
    };
    options.onStart?.({ doneCount, doneCountOf, stats: () => ({ kills: supervisor.stats.kills, crashes: supervisor.stats.crashes }) });
    if (killEveryMs > 0) killer = setInterval(() => supervisor.killRandom(), killEveryMs);
    let producing = true;
    const timed = options.durationMs === undefined ? {} : { until: started + options.durationMs, backlog: () => history.counts().acked - ledger.doneCount() };
    const producer = produce({ transport, history, channel, task: CHAOS_TASKS.noop, count: jobs, maxAttempts: 1000, ...timed }).finally(() => (producing = false));
    const deadline = started + (options.deadlineMs ?? Math.max(300_000, jobs * 10)) + (options.durationMs ?? 0);
    let drained = false;
    let lastTick = 0;
    while (Date.now() < deadline) {
      await sleep(200);
      const done = ledger.doneCount();
      const acked = history.counts().acked;
      if (Date.now() - lastTick >= 1000) {
        lastTick = Date.now();
        await options.onTick?.({ done, acked, kills: supervisor.stats.kills, elapsedMs: Date.now() - started });
        if (isInspectable(transport)) {
          for (const [id, seen] of seenCompleted) {
            if (seen.rechecked || Date.now() - seen.at < 3000) continue;
            seen.rechecked = true;
            await recheck(id).catch(() => undefined);
          }
          if (seenCompleted.size < 500) {
            for (const id of ledger.sampleDone(25)) {
              const record = await transport.get(id).catch(() => null);
              if (record?.state === "completed" && !seenCompleted.has(id)) seenCompleted.set(id, { at: Date.now(), rechecked: false });
            }
          }
        }
      }
      if (!producing && done >= acked) {
        drained = true;
        break;
      }
    }
    const elapsedMs = Date.now() - started;
    if (killer) clearInterval(killer);
    killer = undefined;
    await producer;
    await supervisor.stop();
    const result = check(history, ledger.rows("done"));
    const lostStates: Record<string, number> = {};
    if (isInspectable(transport)) {
      // Retried: after a server restart (R2) the first calls on connections opened before it may fail.
      const again = <T>(fn: () => Promise<T>) => retrying(fn, 5, 500);
      for (const id of seenCompleted.keys()) await again(() => recheck(id));
      for (const id of result.lostIds) {
        const state: MessageState | "missing" = (await again(() => transport.get(id)))?.state ?? "missing";
        lostStates[state] = (lostStates[state] ?? 0) + 1;
      }
    }
    const s = supervisor.stats;
    return {
      transport: options.target.name,
      jobs: history.counts().acked + history.counts().failed,
      workers,
      concurrency,
      killEveryMs,
      kills: s.kills,
      crashes: s.crashes,
      restarts: s.restarts,
      drained,
      elapsedMs,
      throughput: Math.round((result.acked / elapsedMs) * 1000),
      check: result,
      ceiling: s.kills * concurrency,
      completedSampled: seenCompleted.size,
      leftCompleted: leftSet.size,
      pruned: prunedSet.size,
      lostStates,
      warnings: s.warnings,
      leaseLost: s.leaseLost,
      startupMedianMs: median(s.startupMs),
    };
  } finally {
    if (killer) clearInterval(killer);
    await supervisor.stop();
    await transport.close();
    ledgerOpen = false;
    ledger.close();
  }
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** One line summing up an R1 result. */
export function describeR1(r: R1Result): string {
  const c = r.check;
  return (
    `R1 ${r.transport}: ${c.acked} jobs acked, ${r.workers}x${r.concurrency}, kill every ${r.killEveryMs || "-"} ms, ` +
    `kills ${r.kills}, crashes ${r.crashes}, lost ${c.lost}${r.drained ? "" : ` (NOT DRAINED: states ${JSON.stringify(r.lostStates)})`}, unexpected ${c.unexpected}, duplicates ${c.duplicates} (extra runs ${c.extraRuns}, ceiling ${r.ceiling}), ` +
    `${r.throughput}/s over ${(r.elapsedMs / 1000).toFixed(1)} s, drained ${r.drained}, completed sample ${r.completedSampled} (left completed ${r.leftCompleted}, pruned ${r.pruned}), worker start median ${r.startupMedianMs} ms`
  );
}

/** Run `fn`, trying again up to `tries` times `waitMs` apart when it throws. */
async function retrying<T>(fn: () => Promise<T>, tries: number, waitMs: number): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= tries) throw err;
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}
