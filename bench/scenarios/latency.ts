/**
 * Scenario c: end-to-end latency. A producer enqueues at a steady rate (open loop:
 * it does not wait for one enqueue before the next is due) while one worker at
 * concurrency 10 runs; the handler measures enqueue-call-to-handler-start from
 * the timestamp in the payload.
 */
import { sleep } from "../support/loop-worker.ts";
import { latencySummary, round1 } from "../support/stats.ts";
import { makePayload, nowMs, type Scenario } from "./types.ts";

/** c) enqueue-to-handler-start latency under a steady producer. */
export const latency: Scenario = {
  id: "latency",
  letter: "c",
  title: "enqueue-to-handler-start latency, producer at a steady rate, worker at concurrency 10",
  headline: { metric: "p99Ms", label: "p99 ms", higherIsBetter: false },
  async measure({ system, params, deadline, progress }) {
    const total = params.latencyRate * params.latencySeconds;
    const latencies: number[] = [];
    const seen = new Uint8Array(total);
    let duplicates = 0;
    let allSeen!: () => void;
    const finished = new Promise<void>((r) => (allSeen = r));
    const worker = await system.startWorker({ concurrency: params.latencyConcurrency }, (p) => {
      const now = nowMs();
      if (seen[p.i]) {
        duplicates++;
        return;
      }
      seen[p.i] = 1;
      latencies.push(now - p.t);
      if (latencies.length === total) allSeen();
    });
    // Let the worker settle (first poll, subscriptions) before producing.
    await sleep(200);
    let sent = 0;
    let errors = 0;
    // How long each enqueue call took to resolve: on a store that flushes to disk on commit,
    // the floor under the end-to-end figure (a task cannot start before its enqueue commits).
    const enqueueMs: number[] = [];
    let outstanding = 0;
    let maxOutstanding = 0;
    const start = performance.now();
    // Production may overrun its nominal time by the cap (a producer slower than the rate).
    const produceUntil = Math.max(deadline, Date.now() + params.latencySeconds * 1000) + 1_000;
    while (sent < total && Date.now() < produceUntil) {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * params.latencyRate) + 1);
      while (sent < due) {
        const i = sent++;
        outstanding++;
        maxOutstanding = Math.max(maxOutstanding, outstanding);
        const called = performance.now();
        system.enqueueOne(makePayload(i, params.payloadBytes)).then(
          () => {
            outstanding--;
            enqueueMs.push(performance.now() - called);
          },
          () => {
            outstanding--;
            errors++;
          },
        );
      }
      if ((sent & 127) === 0) progress(`sent ${sent}/${total}, received ${latencies.length}`);
      await sleep(2);
    }
    const produceMs = performance.now() - start;
    const waitUntil = Date.now() + params.drainMs;
    const ticker = setInterval(() => progress(`sent ${sent}/${total}, received ${latencies.length}`), 250);
    await Promise.race([finished, sleep(Math.max(0, waitUntil - Date.now()))]);
    clearInterval(ticker);
    await worker.stop();
    return {
      n: total,
      sent,
      received: latencies.length,
      lost: total - latencies.length,
      duplicates,
      enqueueErrors: errors,
      achievedRate: Math.round((sent / produceMs) * 1000),
      maxOutstandingEnqueues: maxOutstanding,
      ...latencySummary(latencies),
      ...latencySummary(enqueueMs, "enqueue"),
      meanMs: round1(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)),
    };
  },
};
