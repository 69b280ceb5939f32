/**
 * Scenario a: enqueue N tasks one call at a time (each awaited before the next),
 * and N tasks through the system's bulk API.
 */
import { round1 } from "../support/stats.ts";
import { makePayload, roundRate, type Scenario } from "./types.ts";

/** a) N single enqueues, sequentially awaited. */
export const enqueueSingle: Scenario = {
  id: "enqueue-single",
  letter: "a",
  title: "enqueue N tasks one call at a time (each awaited)",
  headline: { metric: "rate", label: "tasks/s", higherIsBetter: true },
  async measure({ system, params, deadline, progress }) {
    const n = params.enqueueSingleN;
    const start = performance.now();
    let done = 0;
    for (; done < n; done++) {
      await system.enqueueOne(makePayload(done, params.payloadBytes));
      if ((done & 63) === 63) progress(`${done}/${n}`);
      if (Date.now() > deadline) {
        done++;
        break;
      }
    }
    const elapsed = performance.now() - start;
    return { n, done, capped: done < n, elapsedMs: round1(elapsed), rate: roundRate((done / elapsed) * 1000) };
  },
};

/** a) N enqueues through the bulk API. */
export const enqueueBulk: Scenario = {
  id: "enqueue-bulk",
  letter: "a",
  title: "enqueue N tasks through the bulk API",
  headline: { metric: "rate", label: "tasks/s", higherIsBetter: true },
  async measure({ system, params }) {
    const n = params.enqueueBulkN;
    const payloads = Array.from({ length: n }, (_, i) => makePayload(i, params.payloadBytes));
    const start = performance.now();
    await system.enqueueBulk(payloads);
    const elapsed = performance.now() - start;
    return { n, done: n, elapsedMs: round1(elapsed), rate: roundRate((n / elapsed) * 1000) };
  },
};
