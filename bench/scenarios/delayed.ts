/**
 * Scenario d: delayed tasks. N tasks each due `delayMs` after its enqueue call;
 * the handler measures lateness (handler start minus due time). Early runs
 * (lateness below -1 ms) are counted: they should be zero.
 */
import { sleep } from "../support/loop-worker.ts";
import { latencySummary } from "../support/stats.ts";
import { makePayload, nowMs, type Scenario } from "./types.ts";

const IN_FLIGHT = 20;

/** d) lateness of delayed tasks. */
export const delayed: Scenario = {
  id: "delayed",
  letter: "d",
  title: "N tasks due after a delay: lateness of handler start",
  headline: { metric: "p99Ms", label: "lateness p99 ms", higherIsBetter: false },
  notApplicable(factory, instance) {
    if (instance && !instance.enqueueDelayed) return `${factory.name} has no delayed delivery`;
    return undefined;
  },
  async measure({ system, params, deadline, progress }) {
    const enqueueDelayed = system.enqueueDelayed?.bind(system);
    if (!enqueueDelayed) throw new Error("no delayed delivery");
    const n = params.delayedN;
    const lateness: number[] = [];
    let next = 0;
    let enqueued = -1; // set when enqueueing is over
    let early = 0;
    let allSeen!: () => void;
    const finished = new Promise<void>((r) => (allSeen = r));
    const worker = await system.startWorker({ concurrency: 10 }, (p) => {
      const late = nowMs() - (p.due ?? p.t);
      if (late < -1) early++;
      lateness.push(late);
      if (enqueued >= 0 && lateness.length >= enqueued) allSeen();
    });
    const enqueueStart = performance.now();
    const lane = async () => {
      while (next < n && Date.now() < deadline) {
        const p = makePayload(next++, params.payloadBytes);
        p.due = p.t + params.delayMs;
        await enqueueDelayed(p, params.delayMs);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
    const enqueueMs = performance.now() - enqueueStart;
    enqueued = next;
    if (lateness.length >= enqueued) allSeen();
    const ticker = setInterval(() => progress(`received ${lateness.length}/${n}`), 250);
    // Wait for the delay plus the drain time, however long enqueueing took (bounded by the cap).
    const waitUntil = Math.min(deadline, Date.now()) + params.delayMs + params.drainMs;
    await Promise.race([finished, sleep(Math.max(0, waitUntil - Date.now()))]);
    clearInterval(ticker);
    await worker.stop();
    return {
      n,
      enqueued,
      capped: enqueued < n,
      delayMs: params.delayMs,
      enqueueMs: Math.round(enqueueMs),
      received: lateness.length,
      lost: enqueued - lateness.length,
      early,
      ...latencySummary(lateness),
    };
  },
};
