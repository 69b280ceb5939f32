/**
 * What a scenario is and what it is given. Each scenario's timing code is written
 * once, here in bench/scenarios/, against the primitives of {@link BenchSystem}.
 */
import type { BenchPayload, BenchSystem, SystemFactory } from "../systems/types.ts";

/** Sizes and rates of one harness run. */
export interface BenchParams {
  /** Tasks enqueued one call at a time (scenario a). Full 20,000; quick 500. */
  enqueueSingleN: number;
  /** Tasks enqueued with the bulk API (scenario a). Full 20,000; quick 5,000. */
  enqueueBulkN: number;
  /** Pre-queued no-op tasks processed (scenario b). Full 20,000; quick 3,000. */
  processN: number;
  /** Producer rate in tasks/s (scenario c). Default 500. */
  latencyRate: number;
  /** Producer duration in seconds (scenario c). Full 10; quick 2. */
  latencySeconds: number;
  /** Worker concurrency (scenario c). Default 10. */
  latencyConcurrency: number;
  /** Delayed tasks (scenario d). Full 1,000; quick 100. */
  delayedN: number;
  /** Their delay in ms (scenario d). Default 1,000. */
  delayMs: number;
  /** Backlog size (scenario f). Full 1,000,000; f does not run in quick mode. */
  backlogN: number;
  /** JSON payload size in bytes, roughly. Default 100. */
  payloadBytes: number;
  /** Longest a scenario's measurement may take before it stops and reports what it did. Full 120 s; quick 3 s. */
  capMs: number;
  /**
   * How long scenarios c and d wait for the last tasks after producing (c) or after the
   * delay (d), on top of the cap; what has not arrived by then counts as not received. Full 10 s; quick 4 s.
   */
  drainMs: number;
}

/** The full run's parameters. */
export const FULL_PARAMS: BenchParams = {
  enqueueSingleN: 20_000,
  enqueueBulkN: 20_000,
  processN: 20_000,
  latencyRate: 500,
  latencySeconds: 10,
  latencyConcurrency: 10,
  delayedN: 1_000,
  delayMs: 1_000,
  backlogN: 1_000_000,
  payloadBytes: 100,
  capMs: 120_000,
  drainMs: 10_000,
};

/** The `--quick` run's parameters (about a minute or two for every peer). */
export const QUICK_PARAMS: BenchParams = {
  ...FULL_PARAMS,
  enqueueSingleN: 500,
  enqueueBulkN: 5_000,
  processN: 3_000,
  latencySeconds: 2,
  delayedN: 100,
  capMs: 3_000,
  drainMs: 4_000,
};

/** A measurement's numbers (and a few flags), printed as one JSON line. */
export type Metrics = Record<string, number | boolean | string>;

/** What a scenario runs with. */
export interface ScenarioContext {
  system: BenchSystem;
  factory: SystemFactory;
  params: BenchParams;
  /** The measurement must stop and report by this time (ms since the epoch). */
  deadline: number;
  /** Report progress for the live line (cheap; throttled by the caller). */
  progress(text: string): void;
}

/** One scenario. */
export interface Scenario {
  /** Id used with `--scenarios` (e.g. `process-c50`). */
  id: string;
  /** The brief's letter (a-f). */
  letter: string;
  /** A one-line description for the report. */
  title: string;
  /** The metric that summarises it, for the ratio table, and whether higher is better. */
  headline: { metric: string; label: string; higherIsBetter: boolean };
  /** True when it runs only in the full run (not `--quick`). */
  fullOnly?: boolean;
  /** Why the system cannot run this scenario, or undefined when it can. */
  notApplicable?(system: SystemFactory, instance?: BenchSystem): string | undefined;
  /** Work done before the measurement (in its own process in the full run). */
  prepare?(ctx: ScenarioContext): Promise<void>;
  /** The measurement. */
  measure(ctx: ScenarioContext): Promise<Metrics>;
}

/** A rate for display: whole numbers from 100 up, one decimal below. */
export function roundRate(perSecond: number): number {
  return perSecond >= 100 ? Math.round(perSecond) : Math.round(perSecond * 10) / 10;
}

/** Wall-clock time in ms since the epoch with sub-millisecond precision (comparable across processes). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A payload of roughly `bytes` JSON bytes with index `i`, stamped now. */
export function makePayload(i: number, bytes: number): BenchPayload {
  return { i, t: nowMs(), pad: "x".repeat(Math.max(0, bytes - 40)) };
}
