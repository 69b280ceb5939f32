/**
 * Tests of the harness's pure parts: statistics, aggregation, the Markdown report
 * and the SVG plot. Run: `node --import tsx --test bench/report/report.test.ts`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { QUICK_PARAMS, type Scenario } from "../scenarios/types.ts";
import { SCENARIOS } from "../scenarios/index.ts";
import type { MachineFacts } from "../support/machine.ts";
import { aggregate, type Measurement } from "../support/results.ts";
import { formatNumber, latencySummary, median, percentile } from "../support/stats.ts";
import type { SystemFactory } from "../systems/types.ts";
import { writeReport } from "./markdown.ts";
import { barChart } from "./svg.ts";

test("percentile by nearest rank, median of odd and even counts", () => {
  const v = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
  assert.equal(percentile(v, 50), 5);
  assert.equal(percentile(v, 99), 10);
  assert.equal(percentile(v, 100), 10);
  assert.equal(percentile(v, 0), 1);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.deepEqual(Object.keys(latencySummary([1, 2], "big")), ["bigP50Ms", "bigP95Ms", "bigP99Ms", "bigMaxMs"]);
});

test("formatNumber: integers whole, small values with decimals, non-finite as n/a", () => {
  assert.equal(formatNumber(12345), "12,345");
  assert.equal(formatNumber(30), "30");
  assert.equal(formatNumber(2.345), "2.35");
  assert.equal(formatNumber(Number.NaN), "n/a");
});

test("aggregate takes median, min and max over runs and keeps failure reasons", () => {
  const ms: Measurement[] = [
    { system: "a", scenario: "s", run: 1, status: "ok", metrics: { rate: 10 } },
    { system: "a", scenario: "s", run: 2, status: "ok", metrics: { rate: 30, capped: true } },
    { system: "a", scenario: "s", run: 3, status: "ok", metrics: { rate: 20 } },
    { system: "b", scenario: "s", run: 1, status: "timeout", reason: "killed\nstack" },
  ];
  const [a, b] = aggregate(ms);
  assert.deepEqual(a!.metrics.rate, { median: 20, min: 10, max: 30, runs: 3 });
  assert.equal(a!.capped, true);
  assert.deepEqual(b!.statuses, ["timeout"]);
  assert.deepEqual(b!.reasons, ["killed"]);
});

const facts: MachineFacts = {
  cpu: "test cpu",
  cores: 2,
  memoryGiB: 24,
  freeMemoryGiB: 20,
  loadAverage: "0.00 0.00 0.00",
  os: "test",
  node: "v20",
  commit: "abc1234",
  servers: { redis: "Redis 7" },
  packages: { bullmq: "6.7.0" },
};

function factory(name: string, extra: Partial<SystemFactory>): SystemFactory {
  return { name, library: name, server: "redis", settings: `${name} settings`, create: async () => { throw new Error("unused"); }, cleanup: async () => undefined, ...extra };
}

test("the report has a table per scenario, the Ferry/peer ratio, skips and plots", () => {
  const scenarios = SCENARIOS.filter((s) => s.id === "process-c50" || s.id === "latency") as Scenario[];
  const measurements: Measurement[] = [
    { system: "ferry-redis", scenario: "process-c50", run: 1, status: "ok", metrics: { rate: 30000, rssMB: 120, firstTaskMs: 3 } },
    { system: "bullmq", scenario: "process-c50", run: 1, status: "ok", metrics: { rate: 15000, rssMB: 130, firstTaskMs: 5 } },
    { system: "bullmq", scenario: "latency", run: 1, status: "ok", metrics: { p50Ms: 1, p95Ms: 2, p99Ms: 3, maxMs: 4, received: 5000 } },
    { system: "ferry-sqlite", scenario: "process-c50", run: 0, status: "skipped", reason: "not available yet" },
  ];
  const factories = [
    factory("ferry-redis", { ferry: true }),
    factory("ferry-sqlite", { ferry: true, server: "sqlite" }),
    factory("bullmq", {}),
  ];
  const { markdown, svgs } = writeReport({
    measurements,
    factories,
    scenarios,
    params: QUICK_PARAMS,
    runs: 1,
    quick: true,
    facts,
    elapsedSeconds: 1,
    outFile: "/x/docs/benchmarks.md",
    command: "npm run bench -- --quick",
    loadAtStart: "1.00 1.00 1.00",
  });
  assert.match(markdown, /Quick indicative run/);
  assert.match(markdown, /\| ferry-redis \| 30,000 \| 120 \| 3 \|/);
  assert.match(markdown, /\| process-c50 \| tasks\/s \| ferry-redis \| bullmq \| 30,000 \| 15,000 \| 2\.00× \|/);
  assert.match(markdown, /\*\*Skipped: not available yet\.\*\*/);
  assert.match(markdown, /!\[throughput at concurrency 50\]\(benchmarks-throughput\.svg\)/);
  assert.deepEqual(svgs.map(([f]) => f), ["/x/docs/benchmarks-throughput.svg", "/x/docs/benchmarks-latency.svg"]);
});

test("barChart draws one bar per finite value, escapes labels, marks missing values n/a", () => {
  const svg = barChart(
    [
      { label: "a<b", value: 100, min: 90, max: 110, kind: "ferry" },
      { label: "c", value: Number.NaN, kind: "peer", note: "skipped" },
    ],
    { title: "T & U", unit: "tasks/s", log: true },
  );
  assert.match(svg, /^<svg /);
  assert.match(svg, /a&lt;b/);
  assert.match(svg, /T &amp; U/);
  assert.match(svg, /n\/a \(skipped\)/);
  assert.equal((svg.match(/<rect x="200"/g) ?? []).length, 1);
  assert.match(svg, /<\/svg>\n$/);
});
