/**
 * The benchmark harness: `npm run bench -- [options]` (or `tsx bench/run.ts`).
 *
 * Runs every selected scenario for every selected system, each measurement in its
 * own child process, prints each measurement as a JSON line on stdout, and writes a
 * Markdown report (medians over runs with min-max, Ferry/peer ratios, machine facts)
 * plus an SVG plot. See docs/benchmarks.md for what each scenario measures.
 */
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import type { ChildJob } from "./child.ts";
import { writeReport } from "./report/markdown.ts";
import { SCENARIOS } from "./scenarios/index.ts";
import { FULL_PARAMS, QUICK_PARAMS, type BenchParams, type Scenario } from "./scenarios/types.ts";
import { runChild } from "./support/child-runner.ts";
import { machineFacts } from "./support/machine.ts";
import { ProgressLine } from "./support/progress.ts";
import type { Measurement } from "./support/results.ts";
import { serverDown } from "./support/servers.ts";
import { SYSTEM_NAMES, loadAllSystems } from "./systems/index.ts";
import type { SystemFactory } from "./systems/types.ts";

const positiveInt = (value: string): number => {
  const n = Number(value.replace(/_/g, ""));
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
};
const list = (value: string): string[] => value.split(",").map((s) => s.trim()).filter(Boolean);

const program = new Command()
  .name("bench")
  .description("Ferry's benchmark harness: Ferry and its peers, each measurement in its own process")
  .option("--quick", "a short indicative pass (smaller N, 1 run, no backlog scenario)", false)
  .option("--systems <list>", `comma-separated systems (default: all): ${SYSTEM_NAMES.join(", ")}`, list)
  .option("--scenarios <list>", `comma-separated scenarios (default: all): ${SCENARIOS.map((s) => s.id).join(", ")}`, list)
  .option("--runs <n>", "runs per measurement (default 3; 1 with --quick)", positiveInt)
  .option("--out <file>", "Markdown report to write ('-' for none)", "docs/benchmarks.md")
  .option("--json <file>", "also append every measurement as a JSON line to this file")
  .option("--payload <bytes>", "payload size in bytes (default 100)", positiveInt)
  .option("--n <count>", "override N of scenarios a and b", positiveInt)
  .option("--backlog <count>", "override the backlog size of scenario f (default 1,000,000)", positiveInt)
  .option("--cap <seconds>", "time cap of one measurement (default 120; 8 with --quick)", positiveInt)
  .option("--list", "list systems and scenarios, then exit", false);

interface Options {
  quick: boolean;
  systems?: string[];
  scenarios?: string[];
  runs?: number;
  out: string;
  json?: string;
  payload?: number;
  n?: number;
  backlog?: number;
  cap?: number;
  list: boolean;
}

async function main(): Promise<number> {
  program.parse();
  const opts = program.opts<Options>();
  const factories = await loadAllSystems();
  if (opts.list) {
    for (const f of factories) process.stdout.write(`${f.name.padEnd(26)} ${f.server.padEnd(9)} ${f.settings}\n`);
    for (const s of SCENARIOS) process.stdout.write(`${s.id.padEnd(26)} (${s.letter}) ${s.title}${s.fullOnly ? " [full run only]" : ""}\n`);
    return 0;
  }

  const params: BenchParams = { ...(opts.quick ? QUICK_PARAMS : FULL_PARAMS) };
  if (opts.payload) params.payloadBytes = opts.payload;
  if (opts.n) params.enqueueSingleN = params.enqueueBulkN = params.processN = opts.n;
  if (opts.backlog) params.backlogN = opts.backlog;
  if (opts.cap) params.capMs = opts.cap * 1000;
  const runs = opts.runs ?? (opts.quick ? 1 : 3);

  const unknownSystems = (opts.systems ?? []).filter((s) => !SYSTEM_NAMES.includes(s));
  const unknownScenarios = (opts.scenarios ?? []).filter((s) => !SCENARIOS.some((x) => x.id === s));
  if (unknownSystems.length || unknownScenarios.length) {
    process.stderr.write(`unknown ${[...unknownSystems, ...unknownScenarios].join(", ")}; see --list\n`);
    return 2;
  }
  const systems = opts.systems ? factories.filter((f) => opts.systems!.includes(f.name)) : factories;
  const scenarios = SCENARIOS.filter((s) => (opts.scenarios ? opts.scenarios.includes(s.id) : !(opts.quick && s.fullOnly)));

  const line = new ProgressLine();
  const measurements: Measurement[] = [];
  const record = (m: Measurement) => {
    measurements.push(m);
    const json = JSON.stringify({ ...m, at: new Date().toISOString() });
    process.stdout.write(`${json}\n`);
    if (opts.json) appendFileSync(opts.json, `${json}\n`);
  };

  // Which systems can run at all: server up, and (for Ferry) the API present.
  const runnable: SystemFactory[] = [];
  const downCache = new Map<string, Promise<string | undefined>>();
  for (const f of systems) {
    if (!downCache.has(f.server)) downCache.set(f.server, serverDown(f.server));
    const reason = (await downCache.get(f.server)) ?? (await f.unavailable?.());
    if (reason) {
      line.log(`skip ${f.name}: ${reason}`);
      for (const s of scenarios) record({ system: f.name, scenario: s.id, run: 0, status: "skipped", reason });
    } else runnable.push(f);
  }

  const runId = Date.now().toString(36);
  let counter = 0;
  const isolate = !opts.quick; // full run: pre-queueing happens in its own process, so RSS is the worker's alone
  const childTimeout = params.capMs * 2 + (opts.quick ? 30_000 : 120_000);
  const total = runs * runnable.length * scenarios.length;
  let index = 0;
  let interrupted = false;
  process.once("SIGINT", () => {
    interrupted = true;
    line.log("interrupted: finishing the current measurement's clean-up, then stopping");
  });

  const started = Date.now();
  for (let run = 1; run <= runs && !interrupted; run++) {
    for (const f of runnable) {
      for (const s of scenarios) {
        if (interrupted) break;
        index++;
        const namespace = `fb_${runId}_${++counter}`;
        const prefix = `[${index}/${total}] run ${run}/${runs} ${f.name} ${s.id}`;
        line.step(prefix);
        const job = (phase: ChildJob["phase"]): ChildJob => ({ system: f.name, scenario: s.id, params, namespace, phase });
        let outcome = await measureOne(s, isolate, job, childTimeout, (t) => line.update(t));
        if (outcome.status === "error" || outcome.status === "timeout") {
          const cleaned = await runChild(job("cleanup"), 60_000, () => undefined);
          if (cleaned.status !== "ok" && cleaned.status !== "prepared") line.log(`clean-up of ${namespace} failed: ${cleaned.reason}`);
        }
        if (outcome.status === "prepared") outcome = { status: "error", reason: "prepared but not measured" };
        const status = outcome.status as Measurement["status"];
        record({ system: f.name, scenario: s.id, run, status, ...(outcome.metrics ? { metrics: outcome.metrics } : {}), ...(outcome.reason ? { reason: outcome.reason } : {}) });
        if (status === "error" || status === "timeout") line.log(`${prefix}: ${status}: ${outcome.reason?.split("\n")[0]}`);
      }
    }
  }
  line.done();
  const elapsed = Math.round((Date.now() - started) / 1000);
  process.stderr.write(`measured ${index} of ${total} in ${elapsed} s\n`);

  if (opts.out !== "-") {
    const facts = await machineFacts();
    const outFile = resolve(opts.out);
    mkdirSync(dirname(outFile), { recursive: true });
    const { markdown, svgs } = writeReport({
      measurements,
      factories: systems,
      scenarios,
      params,
      runs,
      quick: opts.quick,
      facts,
      elapsedSeconds: elapsed,
      outFile,
      command: `npm run bench --${process.argv.slice(2).map((a) => ` ${a}`).join("")}`,
    });
    writeFileSync(outFile, markdown);
    for (const [file, svg] of svgs) writeFileSync(file, svg);
    process.stderr.write(`wrote ${opts.out}${svgs.length ? ` and ${svgs.length} SVG plot(s)` : ""}\n`);
  }
  return measurements.some((m) => m.status === "error" || m.status === "timeout") ? 1 : 0;
}

async function measureOne(
  scenario: Scenario,
  isolate: boolean,
  job: (phase: ChildJob["phase"]) => ChildJob,
  timeoutMs: number,
  onProgress: (text: string) => void,
) {
  if (isolate && scenario.prepare) {
    const prepared = await runChild(job("prepare"), timeoutMs, (t) => onProgress(`prepare: ${t}`));
    if (prepared.status !== "prepared") return prepared;
    return runChild(job("measure"), timeoutMs, onProgress);
  }
  return runChild(job("all"), timeoutMs, onProgress);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
