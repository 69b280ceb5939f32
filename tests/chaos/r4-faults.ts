/**
 * R4, handler faults: handlers that throw, exceed their timeout, hang ignoring
 * the abort, call `process.exit`, leave a rejection unhandled, or leak memory
 * until the process dies, mixed with no-op jobs. Poison messages must reach
 * the dead-letter store after exactly N attempts (crashes count: the worker's
 * `WORKER_CRASHED` rule) and the other jobs must keep flowing with nothing lost.
 *
 * Two channels: `chaos-r4` (throw, timeout, hang, unhandled rejection, no-ops)
 * on regular workers, and `chaos-r4-crash` (process.exit, memory leak, no-ops)
 * on workers with a small heap and concurrency 1, so a crash takes down only
 * the attempt that caused it and each poison message's fate is its own.
 */
import { join } from "node:path";
import { createTransport, isInspectable, type Transport } from "../../src/index.ts";
import { CHAOS_TASKS, POISON_FAULTS, type FaultKind } from "./chaos-tasks.ts";
import { check, type CheckResult } from "./checker.ts";
import { EnqueueHistory } from "./history.ts";
import { Ledger } from "./ledger.ts";
import { produce } from "./producer.ts";
import { Supervisor } from "./supervisor.ts";
import type { Target } from "./targets.ts";

/** Options of {@link runR4}. */
export interface R4Options {
  target: Target;
  /** No-op jobs mixed in (half on each channel). Default 2,000. */
  jobs?: number;
  /** Poison messages per fault kind. Default 3. */
  poison?: number;
  /** Attempts of a poison message (N). Default 3. */
  attempts?: number;
  /** Messages whose handler leaves a rejection unhandled and then succeeds. Default 20. */
  unhandled?: number;
  /** Regular worker processes. Default 2. */
  workers?: number;
  /** Concurrency per regular worker. Default 8. */
  concurrency?: number;
  /** Heap of the workers that run the crashing tasks, MB. Default 64. */
  leakHeapMb?: number;
  /** Workers (concurrency 1) on the crash channel. Default 2. */
  crashWorkers?: number;
  /** Install the process-level unhandledRejection guard in workers. Default true. */
  guardRejections?: boolean;
  /** Give up after this long (ms). Default 180,000. */
  deadlineMs?: number;
  verbose?: boolean;
}

/** How one fault kind ended. */
export interface FaultOutcome {
  kind: FaultKind;
  messages: number;
  /** Messages in the dead-letter store at the end. */
  dead: number;
  /** Dead messages whose last recorded failure is attempt N. */
  deadAtN: number;
  /** Handler runs (ledger `start` rows) in all. */
  runs: number;
  /** Highest attempt whose handler ran (must be at most N). */
  maxAttemptRun: number;
  /** Codes of the final error, counted. */
  finalCodes: Record<string, number>;
  /** Attempt numbers of the final error, counted. */
  finalAttempts: Record<string, number>;
}

/** What R4 measured. */
export interface R4Result {
  transport: string;
  attempts: number;
  /** Poison messages sent per fault kind. */
  poison: number;
  faults: FaultOutcome[];
  /** Sends that failed, by error message (none expected: R4 injects no broker faults). */
  sendErrors: Record<string, number>;
  /** No-op and unhandled-rejection jobs: the ones that must complete. */
  check: CheckResult;
  crashes: number;
  crashReasons: Record<string, number>;
  rejectionsCaught: number;
  drained: boolean;
  elapsedMs: number;
  /** No-op completions per second while faults ran. */
  throughput: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MAIN = "chaos-r4";
const CRASH = "chaos-r4-crash";
const CRASHING: readonly FaultKind[] = ["exit", "leak"];

/** Run R4 once on `target`. */
export async function runR4(options: R4Options): Promise<R4Result> {
  const jobs = options.jobs ?? 2000;
  const poison = options.poison ?? 3;
  const attempts = options.attempts ?? 3;
  const ledgerPath = join(options.target.dir, `ledger-r4-${Date.now()}.db`);
  const ledger = new Ledger(ledgerPath);
  const history = new EnqueueHistory();
  const transport: Transport = await createTransport(options.target.url);
  const base = { url: options.target.url, ledger: ledgerPath, lease: "2s", guardRejections: options.guardRejections ?? true };
  const regular = { config: { ...base, channels: [MAIN], concurrency: options.concurrency ?? 8 } };
  const crasher = { config: { ...base, channels: [CRASH], concurrency: 1 }, heapMb: options.leakHeapMb ?? 64 };
  const specs = [...Array.from({ length: options.workers ?? 2 }, () => regular), ...Array.from({ length: options.crashWorkers ?? 2 }, () => crasher)];
  const supervisor = new Supervisor(specs, { verbose: options.verbose ?? false });
  const mustComplete = [CHAOS_TASKS.noop, CHAOS_TASKS.unhandled];
  try {
    await supervisor.start();
    const started = Date.now();
    const sends: Promise<void>[] = [];
    for (const kind of POISON_FAULTS) {
      const channel = CRASHING.includes(kind) ? CRASH : MAIN;
      sends.push(produce({ transport, history, channel, task: CHAOS_TASKS[kind], count: poison, maxAttempts: attempts }));
    }
    sends.push(produce({ transport, history, channel: MAIN, task: CHAOS_TASKS.unhandled, count: options.unhandled ?? 20, maxAttempts: 1000 }));
    sends.push(produce({ transport, history, channel: MAIN, task: CHAOS_TASKS.noop, count: Math.ceil(jobs / 2), maxAttempts: 1000, batch: 100 }));
    sends.push(produce({ transport, history, channel: CRASH, task: CHAOS_TASKS.noop, count: Math.floor(jobs / 2), maxAttempts: 1000, batch: 100 }));
    await Promise.all(sends);
    const poisonIds = new Map<FaultKind, string[]>(POISON_FAULTS.map((k) => [k, history.ackedIds(CHAOS_TASKS[k])]));
    const owed = mustComplete.reduce((n, t) => n + history.ackedIds(t).length, 0);
    const deadline = started + (options.deadlineMs ?? 180_000);
    let drained = false;
    let noopDoneAt = 0;
    while (Date.now() < deadline) {
      await sleep(500);
      const done = ledger.doneCount();
      if (done >= owed && noopDoneAt === 0) noopDoneAt = Date.now();
      if (done < owed || !isInspectable(transport)) continue;
      let allDead = true;
      for (const ids of poisonIds.values()) {
        for (const id of ids) if ((await transport.get(id))?.state !== "dead") allDead = false;
      }
      if (allDead) {
        drained = true;
        break;
      }
    }
    const elapsedMs = Date.now() - started;
    await supervisor.stop();
    const faults = await faultOutcomes(transport, ledger, poisonIds, attempts);
    const result = check(history, ledger.rows("done"), mustComplete);
    const noopMs = (noopDoneAt || Date.now()) - started;
    const s = supervisor.stats;
    return {
      transport: options.target.name,
      attempts,
      poison,
      faults,
      sendErrors: sendErrors(history),
      check: result,
      crashes: s.crashes,
      crashReasons: s.crashReasons,
      rejectionsCaught: s.rejections,
      drained,
      elapsedMs,
      throughput: Math.round((result.acked / noopMs) * 1000),
    };
  } finally {
    await supervisor.stop();
    await transport.close();
    ledger.close();
  }
}

/**
 * How each fault kind's messages ended: dead-letter state and last recorded
 * attempt read from the transport, handler runs from the ledger's `start` rows.
 */
export async function faultOutcomes(transport: Transport, ledger: Ledger, poisonIds: ReadonlyMap<FaultKind, string[]>, attempts: number): Promise<FaultOutcome[]> {
  const starts = ledger.rows("start");
  const faults: FaultOutcome[] = [];
  for (const [kind, ids] of poisonIds) {
    const task = CHAOS_TASKS[kind];
    const mine = starts.filter((r) => r.task === task);
    const outcome: FaultOutcome = { kind, messages: ids.length, dead: 0, deadAtN: 0, runs: mine.length, maxAttemptRun: Math.max(0, ...mine.map((r) => r.attempt)), finalCodes: {}, finalAttempts: {} };
    if (isInspectable(transport)) {
      for (const id of ids) {
        const record = await transport.get(id);
        if (record?.state !== "dead") continue;
        outcome.dead++;
        const last = record.errors.at(-1);
        if (last?.attempt === attempts) outcome.deadAtN++;
        const code = last?.code ?? "none";
        outcome.finalCodes[code] = (outcome.finalCodes[code] ?? 0) + 1;
        const at = String(last?.attempt ?? "none");
        outcome.finalAttempts[at] = (outcome.finalAttempts[at] ?? 0) + 1;
      }
    }
    faults.push(outcome);
  }
  return faults;
}

/** Failed sends of a run, counted by error message. */
export function sendErrors(history: EnqueueHistory): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of history.entries()) if (e.state === "failed") out[e.error ?? "unknown"] = (out[e.error ?? "unknown"] ?? 0) + 1;
  return out;
}

/**
 * True when R4 kept its promises: nothing lost or unexpected, every poison message
 * of every kind sent (a kind whose sends failed proves nothing), dead after exactly N
 * attempts as recorded, and no attempt past N run.
 */
export function r4ChecksPass(r: R4Result): boolean {
  return r.check.lost === 0 && r.check.unexpected === 0 && r.faults.every((f) => f.messages === r.poison && f.dead === f.messages && f.deadAtN === f.messages && f.maxAttemptRun <= r.attempts);
}

/** Lines summing up an R4 result. */
export function describeR4(r: R4Result): string {
  const c = r.check;
  const lines = [
    `R4 ${r.transport}: N=${r.attempts}, ${c.acked} jobs that must complete: lost ${c.lost}, unexpected ${c.unexpected}, duplicates ${c.duplicates}; ` +
      `${r.drained ? "" : "NOT DRAINED (unfinished jobs count as lost above; they may still be queued), "}crashes ${r.crashes} ${JSON.stringify(r.crashReasons)}, rejections caught ${r.rejectionsCaught}, drained ${r.drained} in ${(r.elapsedMs / 1000).toFixed(1)} s, ${r.throughput}/s`,
  ];
  if (Object.keys(r.sendErrors).length > 0) lines.push(`  FAILED SENDS: ${JSON.stringify(r.sendErrors)}`);
  for (const f of r.faults) lines.push(describeFault(f));
  return lines.join("\n");
}

/** One line for one fault kind's outcome. */
export function describeFault(f: FaultOutcome): string {
  return `  ${f.kind}: ${f.dead}/${f.messages} dead, ${f.deadAtN} after exactly N, handler runs ${f.runs}, highest attempt run ${f.maxAttemptRun}, final codes ${JSON.stringify(f.finalCodes)}, final attempts ${JSON.stringify(f.finalAttempts)}`;
}

/** True when every poison message of every kind is dead after exactly `attempts` handler runs. */
export function exactlyN(faults: readonly FaultOutcome[], attempts: number): boolean {
  return faults.every((f) => f.dead === f.messages && f.deadAtN === f.messages && f.maxAttemptRun <= attempts && f.runs === f.messages * attempts);
}
