/**
 * The benchmark harness: `npm run bench -- [options]` (or `tsx bench/run.ts`).
 *
 * Runs every selected scenario for every selected system, each measurement in its
 * own child process, prints each measurement as a JSON line on stdout, and writes a
 * Markdown report (medians over runs with min-max, Ferry/peer ratios, machine facts)
 * plus an SVG plot. See docs/benchmarks.md for what each scenario measures.
 */
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, dirname, isAbsolute, resolve } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import type { ChildItem, ChildJob } from "./child.ts";
import { writeReport } from "./report/markdown.ts";
import { SCENARIOS } from "./scenarios/index.ts";
import { FULL_PARAMS, QUICK_PARAMS, type BenchParams, type Scenario } from "./scenarios/types.ts";
import { runChild, type ChildOutcome } from "./support/child-runner.ts";
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
/**
 * The systems of a `--quick` pass: Ferry on each transport and the peers its
 * targets are stated against. `--quick --systems all` runs every peer.
 */
const QUICK_SYSTEMS = ["ferry-sqlite", "ferry-redis", "ferry-postgres", "ferry-amqp", "bullmq", "bee-queue", "graphile-worker-batched", "raw-amqp"];

const list = (value: string): string[] => value.split(",").map((s) => s.trim()).filter(Boolean);

const program = new Command()
  .name("bench")
  .description("Ferry's benchmark harness: Ferry and its peers, each measurement in its own process")
  .option("--quick", `a one-minute indicative pass: smaller N, 3 s caps, 1 run, no backlog scenario, and (unless --systems is given) only Ferry and the peers its targets name: ${QUICK_SYSTEMS.join(", ")}`, false)
  .option("--systems <list>", `comma-separated systems, or "all" (default: all; with --quick, the list above): ${SYSTEM_NAMES.join(", ")}`, list)
  .option("--scenarios <list>", `comma-separated scenarios (default: all): ${SCENARIOS.map((s) => s.id).join(", ")}`, list)
  .option("--runs <n>", "runs per measurement (default 3; 1 with --quick)", positiveInt)
  .option("--out <file>", "Markdown report to write ('-' for none)", "docs/benchmarks.md")
  .option("--json <file>", "also append every measurement as a JSON line to this file")
  .option("--payload <bytes>", "payload size in bytes (default 100)", positiveInt)
  .option("--n <count>", "override N of scenarios a and b", positiveInt)
  .option("--backlog <count>", "override the backlog size of scenario f (default 1,000,000)", positiveInt)
  .option("--cap <seconds>", "time cap of one measurement (default 120; 5 with --quick)", positiveInt)
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

  if (opts.systems?.includes("all")) opts.systems = [...SYSTEM_NAMES];
  else if (opts.quick && !opts.systems) opts.systems = QUICK_SYSTEMS.filter((s) => SYSTEM_NAMES.includes(s));
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
  // Full run: every scenario in its own process, and pre-queueing in a process of its own, so
  // the RSS of (e) is the worker's alone. Quick run: two processes per system (fewer start-ups):
  // one for the scenarios without a preparation, one for the worker scenarios (b), whose RSS is
  // then that process's after pre-queueing and the earlier worker scenario.
  const isolate = !opts.quick;
  const units: Scenario[][] = opts.quick
    ? [scenarios.filter((s) => !s.prepare), scenarios.filter((s) => s.prepare)].filter((u) => u.length > 0)
    : scenarios.map((s) => [s]);
  const perScenarioTimeout = params.capMs * 2 + (opts.quick ? 20_000 : 120_000);
  const total = runs * runnable.length * scenarios.length;
  let index = 0;
  let interrupted = false;
  process.once("SIGINT", () => {
    interrupted = true;
    line.log("interrupted: finishing the current measurement's clean-up, then stopping");
  });

  const started = Date.now();
  const loadAtStart = loadavg().map((l) => l.toFixed(2)).join(" ");
  for (let run = 1; run <= runs && !interrupted; run++) {
    for (const f of runnable) {
      for (const unit of units) {
        if (interrupted) break;
        const items: ChildItem[] = unit.map((s) => ({ scenario: s.id, namespace: `fb_${runId}_${++counter}` }));
        const job = (phase: ChildJob["phase"]): ChildJob => ({ system: f.name, items, params, phase });
        const first = index + 1;
        index += unit.length;
        const head = `[${first === index ? index : `${first}-${index}`}/${total}] run ${run}/${runs} ${f.name}`;
        line.step(`${head} ${unit.map((s) => s.id).join(",")}`);
        const timeout = perScenarioTimeout * unit.length;
        const onProgress = (scenario: string, text: string) => line.update(`${scenario}: ${text}`);
        let outcomes: Map<string, ChildOutcome>;
        if (isolate && unit.length === 1 && unit[0]!.prepare) {
          const prepared = await runChild(job("prepare"), timeout, (sc, t) => onProgress(sc, `prepare: ${t}`));
          const p = prepared.get(unit[0]!.id)!;
          outcomes = p.status === "prepared" ? await runChild(job("measure"), timeout, onProgress) : prepared;
        } else {
          outcomes = await runChild(job("all"), timeout, onProgress);
        }
        if ([...outcomes.values()].some((o) => o.status === "error" || o.status === "timeout" || o.status === "prepared")) {
          const cleaned = await runChild(job("cleanup"), 60_000, () => undefined);
          for (const [sc, o] of cleaned) if (o.status !== "ok") line.log(`clean-up of ${f.name} ${sc} failed: ${o.reason}`);
        }
        for (const s of unit) {
          let o = outcomes.get(s.id) ?? { status: "error" as const, reason: "no outcome" };
          if (o.status === "prepared") o = { status: "error", reason: "prepared but not measured" };
          const status = o.status as Measurement["status"];
          record({ system: f.name, scenario: s.id, run, status, ...(o.metrics ? { metrics: o.metrics } : {}), ...(o.reason ? { reason: o.reason } : {}) });
          if (status === "error" || status === "timeout") line.log(`${head} ${s.id}: ${status}: ${o.reason?.split("\n")[0]}`);
        }
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
      loadAtStart,
      // Absolute paths in the arguments are shown by file name only (no machine paths in the docs).
      command: `npm run bench --${process.argv.slice(2).map((a) => ` ${isAbsolute(a) ? basename(a) : a}`).join("")}`,
    });
    writeFileSync(outFile, markdown);
    for (const [file, svg] of svgs) writeFileSync(file, svg);
    process.stderr.write(`wrote ${opts.out}${svgs.length ? ` and ${svgs.length} SVG plot(s)` : ""}\n`);
  }
  return measurements.some((m) => m.status === "error" || m.status === "timeout") ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
