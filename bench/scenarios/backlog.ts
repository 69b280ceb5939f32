/**
 * Scenario f: a large backlog. Measures the bulk enqueue rate up to N tasks, then,
 * with the backlog present, single enqueues and the latency of one receive
 * (`takeBatch(50)`), against the same receive with a small backlog. Only for
 * systems that offer `takeBatch` (Ferry and the raw clients), only in the full run.
 */
import { latencySummary, round1 } from "../support/stats.ts";
import { makePayload, type Scenario } from "./types.ts";

const CHUNK = 10_000;
const SMALL = 20_000;
const PROBES = 200;
const BATCH = 50;
const SINGLES = 1_000;

async function probe(take: (max: number) => Promise<number>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < PROBES; i++) {
    const start = performance.now();
    const got = await take(BATCH);
    times.push(performance.now() - start);
    if (got === 0) throw new Error("backlog ran dry during the probe");
  }
  return times;
}

/** f) a 1,000,000-task backlog. */
export const backlog: Scenario = {
  id: "backlog",
  letter: "f",
  title: "a large backlog: bulk enqueue rate, then single enqueues and receive latency with it present",
  headline: { metric: "bigP50Ms", label: "receive p50 ms at full backlog", higherIsBetter: false },
  fullOnly: true,
  notApplicable(factory, instance) {
    if (instance && !instance.takeBatch) return `${factory.name} has no single-call receive in its public API`;
    if (!factory.raw && !factory.ferry) return "limited to Ferry's transports and the raw clients";
    return undefined;
  },
  async measure({ system, params, progress, deadline }) {
    const take = system.takeBatch?.bind(system);
    if (!take) throw new Error("no takeBatch");
    const n = params.backlogN;
    const small = Math.min(SMALL, n);
    await system.enqueueBulk(Array.from({ length: small }, (_, i) => makePayload(i, params.payloadBytes)));
    const smallProbe = await probe(take);
    const start = performance.now();
    let queued = small - PROBES * BATCH;
    let i = small;
    while (i < n && Date.now() < deadline) {
      const count = Math.min(CHUNK, n - i);
      await system.enqueueBulk(Array.from({ length: count }, (_, j) => makePayload(i + j, params.payloadBytes)));
      i += count;
      queued += count;
      progress(`backlog ${i}/${n}`);
    }
    const bulkMs = performance.now() - start;
    const singleStart = performance.now();
    for (let k = 0; k < SINGLES; k++) await system.enqueueOne(makePayload(n + k, params.payloadBytes));
    const singleMs = performance.now() - singleStart;
    const bigProbe = await probe(take);
    return {
      n,
      backlog: queued + SINGLES,
      capped: i < n,
      bulkRate: Math.round(((i - small) / bulkMs) * 1000),
      singleRateWithBacklog: Math.round((SINGLES / singleMs) * 1000),
      batch: BATCH,
      ...latencySummary(smallProbe, "small"),
      ...latencySummary(bigProbe, "big"),
      slowdownP50: round1(latencySummary(bigProbe).p50Ms! / latencySummary(smallProbe).p50Ms!),
    };
  },
};
