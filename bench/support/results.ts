/**
 * Measurement records and their aggregation over runs (median, min, max).
 */
import type { Metrics } from "../scenarios/types.ts";
import { median } from "./stats.ts";

/** One measurement: one scenario, one system, one run. */
export interface Measurement {
  system: string;
  scenario: string;
  run: number;
  status: "ok" | "n/a" | "error" | "timeout" | "skipped";
  metrics?: Metrics;
  /** Error, timeout or not-applicable reason. */
  reason?: string;
}

/** A metric over runs. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number;
}

/** Measurements of one system in one scenario, aggregated. */
export interface Aggregate {
  system: string;
  scenario: string;
  /** Statuses seen (all `ok` in the normal case). */
  statuses: string[];
  reasons: string[];
  /** True when any run hit the time cap. */
  capped: boolean;
  metrics: Record<string, Spread>;
}

/** Group measurements by system and scenario and take median/min/max of every numeric metric. */
export function aggregate(measurements: readonly Measurement[]): Aggregate[] {
  const groups = new Map<string, Measurement[]>();
  for (const m of measurements) {
    const key = `${m.system}\u0000${m.scenario}`;
    const list = groups.get(key) ?? [];
    list.push(m);
    groups.set(key, list);
  }
  const out: Aggregate[] = [];
  for (const list of groups.values()) {
    const first = list[0]!;
    const values = new Map<string, number[]>();
    let capped = false;
    for (const m of list) {
      if (m.status !== "ok" || !m.metrics) continue;
      if (m.metrics.capped === true) capped = true;
      for (const [name, v] of Object.entries(m.metrics)) {
        if (typeof v !== "number" || !Number.isFinite(v)) continue;
        const arr = values.get(name) ?? [];
        arr.push(v);
        values.set(name, arr);
      }
    }
    const metrics: Record<string, Spread> = {};
    for (const [name, arr] of values) metrics[name] = { median: median(arr), min: Math.min(...arr), max: Math.max(...arr), runs: arr.length };
    out.push({
      system: first.system,
      scenario: first.scenario,
      statuses: [...new Set(list.map((m) => m.status))],
      reasons: [...new Set(list.flatMap((m) => (m.reason ? [m.reason.split("\n")[0]!] : [])))],
      capped,
      metrics,
    });
  }
  return out;
}
