/**
 * R2, broker faults, for server-backed transports. Runs the R1 soak (no kills
 * by default) while the connection between workers and server suffers faults:
 *
 * - `proxy` (default): workers reach the server through the TCP fault proxy,
 *   which cycles through reset, delay, drop and a blackhole longer than the
 *   lease; the shared server is never touched.
 * - `restart`: the real server is stopped and started mid-run with the commands
 *   of `.ci/run` (Redis with `appendfsync always` for the run, restored after).
 *
 * Reports lost (0 for acknowledged enqueues), duplicates, throughput against
 * an undisturbed run, and how long workers took to resume after each fault.
 */
import { FaultProxy } from "./fault-proxy.ts";
import { runR1, type R1Result } from "./r1-soak.ts";
import { redisMakeDurable, redisRestore, restartServer, type RedisDurability } from "./server-control.ts";
import type { Target } from "./targets.ts";

/** Options of {@link runR2}. */
export interface R2Options {
  target: Target;
  mode?: "proxy" | "restart";
  /**
   * Jobs. Default: through the proxy, as many as a run long enough for every kind of fault
   * to hit once (a fixed count finished before the first fault on a fast transport); on a
   * restart, 20,000.
   */
  jobs?: number;
  /** Worker processes. Default 2. */
  workers?: number;
  /** Concurrency per worker. Default 8. */
  concurrency?: number;
  /** Pause between faults, ms. Default 3000. */
  faultEveryMs?: number;
  /** Also SIGKILL a worker this often (ms). Default 0 (no kills). */
  killEveryMs?: number;
  verbose?: boolean;
}

/** One injected fault and how the workers came through it. */
export interface FaultRecord {
  fault: string;
  /** How long the fault lasted (ms). */
  lastedMs: number;
  /**
   * From the fault's end until the workers behind it completed more jobs than they could hold in
   * flight (so at least one was received after the fault), in ms; -1 when not within 30 s or the run ended.
   */
  resumedAfterMs: number;
}

/** What R2 measured. */
export interface R2Result {
  mode: "proxy" | "restart";
  soak: R1Result;
  faults: FaultRecord[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Wait until `doneCount` rises by more than `slack` above `from` (the jobs that
 * could have been received before the fault ended), up to 30 s; the ms waited or -1.
 */
async function resumed(doneCount: () => number, from: number, stop: AbortSignal, slack: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < 30_000 && !stop.aborted) {
    if (doneCount() > from + slack) return Date.now() - start;
    await sleep(25);
  }
  return -1;
}

/** Injects one fault; `slack` is how many jobs the affected workers may hold in flight. */
type Injector = (doneCount: () => number, stop: AbortSignal, slack: number) => Promise<FaultRecord | undefined>;

function proxyFaults(proxy: FaultProxy): Injector[] {
  const hold = async (name: string, on: () => void, off: () => void, ms: number, doneCount: () => number, stop: AbortSignal, slack: number): Promise<FaultRecord> => {
    on();
    const began = Date.now();
    await sleep(ms);
    const before = doneCount();
    off();
    return { fault: name, lastedMs: Date.now() - began, resumedAfterMs: await resumed(doneCount, before, stop, slack) };
  };
  return [
    async (doneCount, stop, slack) => {
      const before = doneCount();
      proxy.reset();
      return { fault: "reset", lastedMs: 0, resumedAfterMs: await resumed(doneCount, before, stop, slack) };
    },
    (doneCount, stop, slack) => hold("delay 200 ms", () => proxy.delay(200), () => proxy.delay(0), 2000, doneCount, stop, slack),
    (doneCount, stop, slack) => hold("drop", () => proxy.drop(true), () => proxy.drop(false), 1500, doneCount, stop, slack),
    (doneCount, stop, slack) => hold("blackhole 3 s (past the 2 s lease)", () => proxy.blackhole(true), () => proxy.blackhole(false), 3000, doneCount, stop, slack),
  ];
}

function restartFaults(target: Target, durable: RedisDurability | undefined): Injector[] {
  return [
    async (doneCount, stop, slack) => {
      const lastedMs = await restartServer(target.name as "redis" | "postgres" | "amqp", durable ? { durable } : {});
      // Counted once the server is back: jobs finished while it went down do not show a resumption.
      const before = doneCount();
      return { fault: `restart ${target.name}`, lastedMs, resumedAfterMs: await resumed(doneCount, before, stop, slack) };
    },
  ];
}

/** Run R2 once on a server-backed `target`. */
export async function runR2(options: R2Options): Promise<R2Result> {
  const { target } = options;
  if (target.port === undefined) throw new Error(`R2 needs a server-backed transport, not ${target.name}`);
  const mode = options.mode ?? "proxy";
  const faults: FaultRecord[] = [];
  const stop = new AbortController();
  let proxy: FaultProxy | undefined;
  let durable: RedisDurability | undefined;
  let loop: Promise<void> = Promise.resolve();
  try {
    let workerUrls = [target.url];
    let injectors: Injector[];
    if (mode === "proxy") {
      proxy = new FaultProxy({ targetHost: "127.0.0.1", targetPort: target.port });
      // The first worker goes through the proxy, the others straight to the server: a partial
      // partition, so a blackholed worker's leases run out and another worker takes them over.
      workerUrls = [target.viaPort(await proxy.start()), target.url];
      injectors = proxyFaults(proxy);
    } else {
      if (target.name === "redis") durable = await redisMakeDurable();
      injectors = restartFaults(target, durable);
    }
    const workers = options.workers ?? 2;
    const concurrency = options.concurrency ?? 8;
    const faultEveryMs = options.faultEveryMs ?? 3000;
    // Each proxy fault holds for up to 3 s and waits up to 30 s for the workers to resume; the
    // run sends for long enough that every kind comes round once (resumption takes well under
    // a second when nothing is wrong).
    const sized = options.jobs === undefined && mode === "proxy" ? { durationMs: injectors.length * (faultEveryMs + 4000) + faultEveryMs } : {};
    const soak = await runR1({
      target,
      jobs: options.jobs ?? 20_000,
      ...sized,
      workers,
      concurrency,
      killEveryMs: options.killEveryMs ?? 0,
      workerUrls,
      verbose: options.verbose ?? false,
      deadlineMs: 600_000,
      // Progress of the workers the faults hit: the proxied one (slot 0), or all of them on a restart.
      onStart: ({ doneCount, doneCountOf }) => {
        const progress = mode === "proxy" ? () => doneCountOf(0) : doneCount;
        loop = (async () => {
          for (let i = 0; !stop.signal.aborted; i++) {
            await sleep(faultEveryMs);
            if (stop.signal.aborted) break;
            const slack = mode === "proxy" ? concurrency : workers * concurrency;
            const record = await injectors[i % injectors.length]!(progress, stop.signal, slack);
            if (record) faults.push(record);
            // A restart is one fault per run: enough to see recovery without hammering a shared server.
            if (mode === "restart") break;
          }
        })();
      },
    });
    stop.abort();
    await loop;
    return { mode, soak, faults };
  } finally {
    stop.abort();
    await loop.catch(() => undefined);
    await proxy?.close();
    if (durable) await redisRestore(durable);
  }
}

/** Lines summing up an R2 result. */
export function describeR2(r: R2Result): string {
  const s = r.soak;
  const c = s.check;
  const lines = [
    `R2 ${s.transport} (${r.mode}): ${c.acked} jobs acked (${c.failedSends} sends failed), lost ${c.lost}, unexpected ${c.unexpected}, duplicates ${c.duplicates} (extra runs ${c.extraRuns}), ` +
      `${s.throughput}/s over ${(s.elapsedMs / 1000).toFixed(1)} s, drained ${s.drained}, stale completions refused ${s.leaseLost}, warnings ${JSON.stringify(s.warnings)}`,
  ];
  for (const f of r.faults) lines.push(`  ${f.fault}: lasted ${f.lastedMs} ms, resumed ${f.resumedAfterMs < 0 ? "not seen (none within 30 s, or the run ended first)" : `${f.resumedAfterMs} ms after`}`);
  return lines.join("\n");
}
