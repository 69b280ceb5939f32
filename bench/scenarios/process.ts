/**
 * Scenario b (and e): process N pre-queued no-op tasks with one worker, at a given
 * concurrency. The rate counts handler starts from the first to the last; the
 * worker's RSS is read when the last task has started (scenario e).
 */
import { countdown } from "../support/countdown.ts";
import { round1 } from "../support/stats.ts";
import { makePayload, roundRate, type Scenario } from "./types.ts";

const PREPARE_CHUNK = 10_000;

function makeProcess(concurrency: number): Scenario {
  return {
    id: `process-c${concurrency}`,
    letter: "b",
    title: `process N pre-queued no-op tasks, one worker at concurrency ${concurrency}`,
    headline: { metric: "rate", label: "tasks/s", higherIsBetter: true },
    async prepare({ system, params, progress }) {
      for (let i = 0; i < params.processN; i += PREPARE_CHUNK) {
        const count = Math.min(PREPARE_CHUNK, params.processN - i);
        await system.enqueueBulk(Array.from({ length: count }, (_, j) => makePayload(i + j, params.payloadBytes)));
        progress(`pre-queued ${i + count}/${params.processN}`);
      }
    },
    async measure({ system, params, deadline, progress }) {
      const n = params.processN;
      const counter = countdown(n, deadline);
      let first = 0;
      let last = 0;
      const workerStart = performance.now();
      const worker = await system.startWorker({ concurrency }, () => {
        last = performance.now();
        if (first === 0) first = last;
        counter.hit();
      });
      const ticker = setInterval(() => progress(`${counter.count}/${n}`), 250);
      const outcome = await counter.done;
      clearInterval(ticker);
      const memory = process.memoryUsage();
      const done = counter.count;
      const stopAt = performance.now();
      await worker.stop();
      const stopped = performance.now();
      const span = last - first;
      const rate = done > 1 && span > 0 ? ((done - 1) / span) * 1000 : 0;
      return {
        n,
        done,
        capped: outcome === "timeout",
        concurrency,
        firstTaskMs: round1(first === 0 ? Number.NaN : first - workerStart),
        elapsedMs: round1(span),
        rate: roundRate(rate),
        stopMs: round1(stopped - stopAt),
        rateToStopped: roundRate(done > 1 ? ((done - 1) / (stopped - first)) * 1000 : 0),
        rssMB: round1(memory.rss / 1048576),
        heapUsedMB: round1(memory.heapUsed / 1048576),
        maxRssMB: round1(process.resourceUsage().maxRSS / 1024),
      };
    },
  };
}

/** b) concurrency 1. */
export const processC1 = makeProcess(1);
/** b) concurrency 50. */
export const processC50 = makeProcess(50);
