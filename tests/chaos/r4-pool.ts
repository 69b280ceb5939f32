/**
 * R4 through the executor process pool: the worker process keeps the leases
 * and runs every handler in executor child processes (`ProcessPool`, as
 * `ferry worker --processes N`). No-op jobs arrive at a steady rate; poison
 * messages of every fault kind (throw, timeout, hang ignoring the abort,
 * `process.exit`, memory leak until the executor dies) and jobs that leave a
 * rejection unhandled are spread over the run on the same channel.
 *
 * Run twice with the same rate and pool: undisturbed (no-ops only) and with
 * poison. Expected: nothing lost, each poison message dead-lettered after
 * exactly N handler runs (the worker process never dies, so a crash costs the
 * attempt that caused it and nothing else, on every transport), and the
 * no-ops' enqueue-to-handler-start p99 within 2x of the undisturbed run.
 */
import { join } from "node:path";
import { createTransport, isInspectable, type Transport } from "../../src/index.ts";
import { CHAOS_TASKS, POISON_FAULTS, type FaultKind } from "./chaos-tasks.ts";
import { check, type CheckResult } from "./checker.ts";
import { EnqueueHistory } from "./history.ts";
import { Ledger } from "./ledger.ts";
import { produce } from "./producer.ts";
import { exactlyN, describeFault, faultOutcomes, sendErrors, type FaultOutcome } from "./r4-faults.ts";
import { Supervisor } from "./supervisor.ts";
import type { Target } from "./targets.ts";

/** Options of {@link runR4Pool}. */
export interface R4PoolOptions {
  target: Target;
  /** Send poison messages (false: the undisturbed run). */
  poison: boolean;
  /** No-op jobs per second. Default 100. */
  rate?: number;
  /** How long no-ops are sent (ms). Default 20,000. */
  durationMs?: number;
  /** Poison messages per fault kind. Default 2. */
  perKind?: number;
  /** Fault kinds sent. Default all of them. */
  kinds?: readonly FaultKind[];
  /** Attempts of a poison message (N). Default 3. */
  attempts?: number;
  /** Jobs that leave a rejection unhandled and succeed. Default 10. */
  unhandled?: number;
  /** Worker processes. Default 1. */
  workers?: number;
  /** Executor processes per worker. Default 2. */
  processes?: number;
  /** Idle executors kept started per pool. Default the pool's (1). */
  spares?: number;
  /** Worker concurrency. Default 8. */
  concurrency?: number;
  /** Heap of each executor, MB (the leak kills it when full). Default 64. */
  heapMb?: number;
  /** The pool's kill grace for handlers ignoring their abort. Default the pool's (5 s). */
  killGrace?: string;
  /** Give up waiting for the drain after this long past the sends (ms). Default 120,000. */
  deadlineMs?: number;
  verbose?: boolean;
}

/** Enqueue-to-handler-start latency of the no-op jobs, ms. */
export interface Latency {
  count: number;
  p50: number;
  p99: number;
  max: number;
  /** p99 of the jobs sent in each second of the run, for finding when latency rose. */
  p99BySecond: number[];
}

/** What one run measured. */
export interface R4PoolResult {
  transport: string;
  poison: boolean;
  attempts: number;
  /** Poison messages sent per fault kind (0 in the undisturbed run). */
  perKind: number;
  rate: number;
  workers: number;
  processes: number;
  faults: FaultOutcome[];
  /** Sends that failed, by error message (none expected). */
  sendErrors: Record<string, number>;
  /** No-op and unhandled-rejection jobs: the ones that must complete. */
  check: CheckResult;
  latency: Latency;
  /** Worker processes that died (must be 0: only executors may). */
  workerCrashes: number;
  /** Why they died, with their last stderr lines. */
  workerCrashLogs: Array<{ reason: string; stderr: string[] }>;
  /** Executors started in all, replacements included. */
  executorsSpawned: number;
  /** Worker warnings by code (`EXECUTOR_KILLED`, `UNHANDLED_REJECTION`, ...). */
  warnings: Record<string, number>;
  drained: boolean;
  elapsedMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The channel every job of this scenario uses. */
export const R4_POOL_CHANNEL = "chaos-r4-pool";

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Latency of each message's first completed run, from its send to its ledger row. */
function latencyOf(history: EnqueueHistory, ledger: Ledger, task: string): Latency {
  const first = new Map<string, number>();
  for (const row of ledger.rows("done")) if (row.task === task && !first.has(row.messageId)) first.set(row.messageId, row.at);
  const values: number[] = [];
  const seconds: number[][] = [];
  const start = Math.min(...history.entries().map((e) => e.sentAt));
  for (const [id, at] of first) {
    const sentAt = history.get(id)?.sentAt;
    if (sentAt === undefined) continue;
    values.push(at - sentAt);
    (seconds[Math.floor((sentAt - start) / 1000)] ??= []).push(at - sentAt);
  }
  values.sort((a, b) => a - b);
  const p99BySecond = Array.from(seconds, (v) => percentile((v ?? []).sort((a, b) => a - b), 99));
  return { count: values.length, p50: percentile(values, 50), p99: percentile(values, 99), max: values.at(-1) ?? 0, p99BySecond };
}

/** The extra messages of the poison run with their send times (ms after the start), each kind spread evenly over 5-60 % of the run. */
function poisonSchedule(kinds: readonly FaultKind[], perKind: number, unhandled: number, durationMs: number): Array<{ at: number; task: string; kind?: FaultKind }> {
  const spread = (n: number, offset: number) => Array.from({ length: n }, (_, i) => Math.round(durationMs * (0.05 + (0.55 * (i + offset)) / n)));
  const items: Array<{ at: number; task: string; kind?: FaultKind }> = [];
  kinds.forEach((kind, k) => spread(perKind, k / kinds.length).forEach((at) => items.push({ at, task: CHAOS_TASKS[kind], kind })));
  spread(unhandled, 0.5).forEach((at) => items.push({ at, task: CHAOS_TASKS.unhandled }));
  return items.sort((x, y) => x.at - y.at);
}

/** Run R4 through the pool once on `target`. */
export async function runR4Pool(options: R4PoolOptions): Promise<R4PoolResult> {
  const rate = options.rate ?? 100;
  const durationMs = options.durationMs ?? 20_000;
  const attempts = options.attempts ?? 3;
  const workers = options.workers ?? 1;
  const processes = options.processes ?? 2;
  const ledgerPath = join(options.target.dir, `ledger-r4pool-${options.poison ? "poison" : "calm"}-${Date.now()}.db`);
  const ledger = new Ledger(ledgerPath);
  const history = new EnqueueHistory();
  const transport: Transport = await createTransport(options.target.url);
  const config = {
    url: options.target.url,
    ledger: ledgerPath,
    lease: "2s",
    channels: [R4_POOL_CHANNEL],
    concurrency: options.concurrency ?? 8,
    // No process-level guard: an unhandled rejection must be contained in its executor.
    guardRejections: false,
    // The ledger in executors commits without an fsync each (WAL, NORMAL): R4 crashes processes, not the machine.
    pool: { processes, heapMb: options.heapMb ?? 64, ledgerSync: "NORMAL" as const, ...(options.killGrace ? { killGrace: options.killGrace } : {}), ...(options.spares === undefined ? {} : { spares: options.spares }) },
  };
  const supervisor = new Supervisor(Array.from({ length: workers }, () => ({ config })), { verbose: options.verbose ?? false });
  const mustComplete = [CHAOS_TASKS.noop, CHAOS_TASKS.unhandled];
  const kinds = options.kinds ?? POISON_FAULTS;
  const extras = options.poison ? poisonSchedule(kinds, options.perKind ?? 2, options.unhandled ?? 10, durationMs) : [];
  try {
    await supervisor.start();
    const started = Date.now();
    const total = Math.floor((durationMs / 1000) * rate);
    let sent = 0;
    const send = (task: string, count: number, maxAttempts: number) => produce({ transport, history, channel: R4_POOL_CHANNEL, task, count, batch: count, maxAttempts });
    while (Date.now() - started < durationMs) {
      const elapsed = Date.now() - started;
      const due = Math.min(Math.floor((elapsed / 1000) * rate), total) - sent;
      const sends: Promise<void>[] = [];
      if (due > 0) {
        sends.push(send(CHAOS_TASKS.noop, due, 1000));
        sent += due;
      }
      while (extras.length > 0 && extras[0]!.at <= elapsed) {
        const item = extras.shift()!;
        sends.push(send(item.task, 1, item.kind ? attempts : 1000));
      }
      await Promise.all(sends);
      await sleep(10);
    }
    if (total > sent) await send(CHAOS_TASKS.noop, total - sent, 1000);
    for (const item of extras.splice(0)) await send(item.task, 1, item.kind ? attempts : 1000);
    const poisonIds = new Map<FaultKind, string[]>(options.poison ? kinds.map((k) => [k, history.ackedIds(CHAOS_TASKS[k])]) : []);
    const owed = mustComplete.reduce((n, t) => n + history.ackedIds(t).length, 0);
    const deadline = Date.now() + (options.deadlineMs ?? 120_000);
    let drained = false;
    while (Date.now() < deadline) {
      await sleep(250);
      if (ledger.doneCount() < owed || !isInspectable(transport)) continue;
      let allDead = true;
      for (const ids of poisonIds.values()) for (const id of ids) if ((await transport.get(id))?.state !== "dead") allDead = false;
      if (allDead) {
        drained = true;
        break;
      }
    }
    const elapsedMs = Date.now() - started;
    await supervisor.stop();
    const s = supervisor.stats;
    return {
      transport: options.target.name,
      poison: options.poison,
      attempts,
      perKind: options.poison ? (options.perKind ?? 2) : 0,
      rate,
      workers,
      processes,
      faults: await faultOutcomes(transport, ledger, poisonIds, attempts),
      sendErrors: sendErrors(history),
      check: check(history, ledger.rows("done"), mustComplete),
      latency: latencyOf(history, ledger, CHAOS_TASKS.noop),
      workerCrashes: s.crashes,
      workerCrashLogs: s.crashLogs,
      executorsSpawned: s.executorsSpawned,
      warnings: s.warnings,
      drained,
      elapsedMs,
    };
  } finally {
    await supervisor.stop();
    await transport.close();
    ledger.close();
  }
}

/** The undisturbed run and the poison run, on fresh targets made by `makeTarget`. */
export interface R4PoolPair {
  calm: R4PoolResult;
  poison: R4PoolResult;
}

/** p99 with poison / p99 undisturbed. */
export function latencyRatio(pair: R4PoolPair): number {
  return pair.poison.latency.p99 / Math.max(1, pair.calm.latency.p99);
}

/** True when the poison run kept every promise except latency (which is reported, not asserted here). */
export function poolChecksPass(r: R4PoolResult): boolean {
  const allSent = r.faults.every((f) => f.messages === r.perKind) && Object.keys(r.sendErrors).length === 0;
  return allSent && r.drained && r.check.lost === 0 && r.check.unexpected === 0 && r.workerCrashes === 0 && exactlyN(r.faults, r.attempts);
}

/** Lines summing up one run. */
export function describeR4Pool(r: R4PoolResult): string {
  const c = r.check;
  const l = r.latency;
  const lines = [
    `R4 pool ${r.transport} ${r.poison ? "with poison" : "undisturbed"}: ${r.workers} worker x ${r.processes} executors, ${r.rate}/s, N=${r.attempts}; ${c.acked} jobs that must complete: lost ${c.lost}, unexpected ${c.unexpected}, duplicates ${c.duplicates}; ` +
      `${r.drained ? "" : "NOT DRAINED, "}worker crashes ${r.workerCrashes}, executors spawned ${r.executorsSpawned}, warnings ${JSON.stringify(r.warnings)}; ` +
      `no-op latency p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms (${l.count}); ${(r.elapsedMs / 1000).toFixed(1)} s`,
  ];
  if (r.poison) lines.push(`  no-op p99 by second sent: ${l.p99BySecond.join(" ")}`);
  if (Object.keys(r.sendErrors).length > 0) lines.push(`  FAILED SENDS: ${JSON.stringify(r.sendErrors)}`);
  for (const crash of r.workerCrashLogs) lines.push(`  worker crash (${crash.reason}), its last stderr lines:`, ...crash.stderr.map((line) => `    ${line}`));
  for (const f of r.faults) lines.push(describeFault(f));
  return lines.join("\n");
}
