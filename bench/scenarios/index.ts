/**
 * Every scenario, in report order.
 */
import { backlog } from "./backlog.ts";
import { delayed } from "./delayed.ts";
import { enqueueBulk, enqueueSingle } from "./enqueue.ts";
import { latency } from "./latency.ts";
import { processC1, processC50 } from "./process.ts";
import type { Scenario } from "./types.ts";

/** All scenarios, in report order. */
export const SCENARIOS: readonly Scenario[] = [enqueueSingle, enqueueBulk, processC1, processC50, latency, delayed, backlog];

/** Find a scenario by id, or undefined. */
export function findScenario(id: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.id === id);
}
