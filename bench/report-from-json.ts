/**
 * Rebuild docs/benchmarks.md from a JSON-lines file of measurements (`npm run bench -- --json F`),
 * e.g. when a long run was stopped before it wrote its report. Medians are over the runs present.
 *
 *   npx tsx bench/report-from-json.ts results.jsonl [--runs 3] [--cap 20] [--out docs/benchmarks.md] [--command "..."] [--elapsed S]
 *
 * The time a report gives is the span of the measurements' timestamps unless `--elapsed` says otherwise.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { writeReport } from "./report/markdown.ts";
import { SCENARIOS } from "./scenarios/index.ts";
import { FULL_PARAMS, type BenchParams } from "./scenarios/types.ts";
import { machineFacts } from "./support/machine.ts";
import type { Measurement } from "./support/results.ts";
import { loadAllSystems } from "./systems/index.ts";

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const file = args[0];
if (!file) throw new Error("usage: tsx bench/report-from-json.ts results.jsonl [--runs N] [--cap S] [--out F] [--command TEXT] [--load TEXT] [--elapsed S]");
const measurements = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Measurement & { at?: string });
const seen = new Set(measurements.map((m) => m.scenario));
const systems = new Set(measurements.map((m) => m.system));
const params: BenchParams = { ...FULL_PARAMS };
if (flag("--cap")) params.capMs = Number(flag("--cap")) * 1000;
/** Seconds from the first measurement's end to the last one's (a lower bound of the run's length). */
function spanSeconds(ms: ReadonlyArray<{ at?: string }>): number {
  const times = ms.map((m) => Date.parse(m.at ?? "")).filter(Number.isFinite);
  return times.length === 0 ? 0 : Math.round((Math.max(...times) - Math.min(...times)) / 1000);
}
const outFile = resolve(flag("--out") ?? "docs/benchmarks.md");
const { markdown, svgs } = writeReport({
  measurements,
  factories: (await loadAllSystems()).filter((f) => systems.has(f.name)),
  scenarios: SCENARIOS.filter((s) => seen.has(s.id)),
  params,
  runs: Number(flag("--runs") ?? Math.max(...measurements.map((m) => m.run))),
  quick: false,
  facts: await machineFacts(),
  elapsedSeconds: Number(flag("--elapsed") ?? spanSeconds(measurements)),
  outFile,
  command: flag("--command") ?? "npm run bench",
  loadAtStart: flag("--load") ?? "see the run",
});
writeFileSync(outFile, markdown);
for (const [f, svg] of svgs) writeFileSync(f, svg);
process.stderr.write(`wrote ${outFile} from ${measurements.length} measurements\n`);
