/**
 * The Markdown report (docs/benchmarks.md) and its SVG plots, generated from the
 * measurements of one harness run.
 */
import { basename, dirname, resolve } from "node:path";
import type { BenchParams, Scenario } from "../scenarios/types.ts";
import type { MachineFacts } from "../support/machine.ts";
import { aggregate, type Aggregate, type Measurement, type Spread } from "../support/results.ts";
import { formatNumber } from "../support/stats.ts";
import type { SystemFactory } from "../systems/types.ts";
import { barChart, type Bar } from "./svg.ts";

/** Everything the report is made from. */
export interface ReportInput {
  measurements: readonly Measurement[];
  factories: readonly SystemFactory[];
  scenarios: readonly Scenario[];
  params: BenchParams;
  runs: number;
  quick: boolean;
  facts: MachineFacts;
  elapsedSeconds: number;
  /** Absolute path of the Markdown file (SVGs are written beside it). */
  outFile: string;
  /** The command line that produced it. */
  command: string;
  /** Load average when the run started. */
  loadAtStart: string;
}

/** Columns of one scenario's table: metric name and header. */
const COLUMNS: Record<string, Array<[string, string]>> = {
  "enqueue-single": [["rate", "tasks/s"]],
  "enqueue-bulk": [["rate", "tasks/s"]],
  "process-c1": [["rate", "tasks/s"], ["rssMB", "worker RSS MB (e)"], ["firstTaskMs", "first task ms"]],
  "process-c50": [["rate", "tasks/s"], ["rssMB", "worker RSS MB (e)"], ["firstTaskMs", "first task ms"]],
  latency: [["p50Ms", "p50 ms"], ["p95Ms", "p95 ms"], ["p99Ms", "p99 ms"], ["maxMs", "max ms"], ["enqueueP99Ms", "enqueue call p99 ms"], ["received", "received"]],
  delayed: [["p50Ms", "lateness p50 ms"], ["p99Ms", "lateness p99 ms"], ["maxMs", "max ms"], ["early", "early"], ["received", "received"]],
  backlog: [["bulkRate", "bulk enqueue tasks/s"], ["singleRateWithBacklog", "single enqueue tasks/s (backlog)"], ["smallP50Ms", "receive p50 ms (20k)"], ["bigP50Ms", "receive p50 ms (full)"], ["bigP99Ms", "receive p99 ms (full)"]],
};

function cell(spread: Spread | undefined, runs: number): string {
  if (!spread) return "–";
  const m = formatNumber(spread.median);
  if (runs <= 1 || spread.runs <= 1 || spread.min === spread.max) return m;
  return `${m} (${formatNumber(spread.min)}–${formatNumber(spread.max)})`;
}

function kindOf(f: SystemFactory): Bar["kind"] {
  return f.ferry ? "ferry" : f.raw ? "raw" : "peer";
}

function notes(a: Aggregate, scenario: Scenario, params: BenchParams): string {
  const parts: string[] = [];
  if (a.capped) {
    const done = a.metrics.done?.median;
    parts.push(`time cap ${params.capMs / 1000} s hit${done !== undefined ? `: ${formatNumber(done)} done` : ""}`);
  }
  const lost = a.metrics.lost?.median;
  if (lost && (scenario.id === "latency" || scenario.id === "delayed")) parts.push(`${formatNumber(lost)} not received in time`);
  if (a.metrics.duplicates?.median) parts.push(`${formatNumber(a.metrics.duplicates.median)} duplicates`);
  if (a.metrics.enqueueErrors?.median) parts.push(`${formatNumber(a.metrics.enqueueErrors.median)} enqueue errors`);
  const bad = a.statuses.filter((s) => s !== "ok");
  if (bad.length) parts.push(`${bad.join("/")}: ${a.reasons.join("; ").slice(0, 200)}`);
  return parts.join("; ");
}

function scenarioParams(s: Scenario, p: BenchParams): string {
  switch (s.id) {
    case "enqueue-single":
      return `N = ${formatNumber(p.enqueueSingleN)}, payload ~${p.payloadBytes} B`;
    case "enqueue-bulk":
      return `N = ${formatNumber(p.enqueueBulkN)}, payload ~${p.payloadBytes} B`;
    case "process-c1":
    case "process-c50":
      return `N = ${formatNumber(p.processN)} pre-queued, no-op handler; rate = handler starts per second from first to last`;
    case "latency":
      return `${p.latencyRate} tasks/s for ${p.latencySeconds} s, worker concurrency ${p.latencyConcurrency}; latency = handler start − enqueue call (timestamp in the payload)`;
    case "delayed":
      return `N = ${formatNumber(p.delayedN)} tasks, each due ${p.delayMs} ms after its enqueue call; lateness = handler start − due time; "early" counts runs more than 1 ms before due`;
    case "backlog":
      return `backlog of ${formatNumber(p.backlogN)}; receive = one call taking 50 tasks, 200 probes at a 20,000 backlog and again at the full backlog`;
    default:
      return "";
  }
}

/** Ferry vs each peer on the same server, per scenario's headline metric. */
function ratioSection(aggs: readonly Aggregate[], input: ReportInput): string[] {
  const byKey = new Map(aggs.map((a) => [`${a.system}/${a.scenario}`, a]));
  const ferries = input.factories.filter((f) => f.ferry);
  const rows: string[] = [];
  for (const s of input.scenarios) {
    for (const fe of ferries) {
      const mine = byKey.get(`${fe.name}/${s.id}`)?.metrics[s.headline.metric]?.median;
      if (mine === undefined) continue;
      for (const peer of input.factories.filter((f) => !f.ferry && f.server === fe.server)) {
        const theirs = byKey.get(`${peer.name}/${s.id}`)?.metrics[s.headline.metric]?.median;
        if (theirs === undefined || theirs === 0) continue;
        const ratio = mine / theirs;
        rows.push(`| ${s.id} | ${s.headline.label} | ${fe.name} | ${peer.name}${peer.raw ? " (limit)" : ""} | ${formatNumber(mine)} | ${formatNumber(theirs)} | ${ratio.toFixed(2)}× |`);
      }
    }
  }
  const out = ["## Ferry / peer", ""];
  if (rows.length === 0) {
    const reasons = [...new Set(input.measurements.filter((m) => ferries.some((f) => f.name === m.system) && m.status === "skipped" && m.reason).map((m) => m.reason!))];
    out.push(`No Ferry system and peer on the same server were both measured in this run${reasons.length ? ` (${reasons.join("; ")})` : ""}, so there are no ratios. The table compares each Ferry system with every peer and raw client on the same server, on each scenario's headline metric (for tasks/s higher is better, so a ratio above 1 favours Ferry; for latencies lower is better, so a ratio below 1 favours Ferry).`, "");
    return out;
  }
  out.push("Headline metric of each scenario, medians. For tasks/s a ratio above 1 favours Ferry; for latencies a ratio below 1 favours Ferry.", "");
  out.push("| scenario | metric | Ferry | peer | Ferry value | peer value | Ferry/peer |", "|---|---|---|---|---:|---:|---:|", ...rows, "");
  return out;
}

/** Build the Markdown text and the SVG files (path, content) to write beside it. */
export function writeReport(input: ReportInput): { markdown: string; svgs: Array<[string, string]> } {
  const aggs = aggregate(input.measurements.filter((m) => m.status !== "skipped"));
  const byKey = new Map(aggs.map((a) => [`${a.system}/${a.scenario}`, a]));
  const skipped = new Map<string, string>();
  for (const m of input.measurements) if (m.status === "skipped" && m.reason) skipped.set(m.system, m.reason);
  const measured = input.factories.filter((f) => !skipped.has(f.name));
  const { facts, params } = input;
  const dir = dirname(input.outFile);
  const stem = basename(input.outFile).replace(/\.md$/, "");
  const svgs: Array<[string, string]> = [];

  const md: string[] = [];
  md.push("# Benchmarks", "");
  md.push("<!-- Generated by bench/run.ts; edit the generator (bench/report/markdown.ts), not this file. -->", "");
  if (input.quick) {
    md.push(
      "> **Quick indicative run** (`--quick`: smaller N, 1 run, no backlog scenario, by default only Ferry and the peers its targets name) on a shared 2-core machine with other work running. The numbers show that every adapter works and give orders of magnitude only; the reference figures come from a full run (`npm run bench`, 3 runs) on a quiet machine.",
      "",
    );
  } else {
    md.push(`> Full run: medians of ${input.runs} run(s), min–max in brackets.`, "");
  }
  md.push(`Produced by \`${input.command}\` in ${input.elapsedSeconds} s on ${new Date().toISOString().slice(0, 10)}.`, "");

  md.push("## How to run", "");
  md.push("```sh", "npm run bench                       # full run: every system, every scenario, 3 runs, writes this file", "npm run bench -- --quick            # about a minute: 1 run, smaller N, no backlog, Ferry and the peers its targets name", "npm run bench -- --quick --systems all   # the same pass over every peer: a few minutes", "npm run bench -- --systems bullmq,raw-redis --scenarios process-c50 --runs 5 --out - --json results.jsonl", "npm run bench -- --list             # systems and scenarios", "```", "");
  md.push(
    "In the full run each measurement (one scenario, one system, one run) runs in its own child process (`fork` with `--import tsx`), so one system's memory and GC never affect another, and the RSS in scenario (e) is the worker's alone (the pre-queueing of scenario (b) happens in a separate process before the worker's process starts); `--quick` uses two processes per system (one for a, c, d; one for b). Each measurement has a time cap (`--cap`) and its process a hard timeout; a process that passes it is killed. Every measurement is printed as a JSON line on stdout (`--json` appends them to a file too); a live progress line goes to stderr. Each system works under a unique namespace (`fb_<run>_<n>`: Redis key prefix `ferrybench:<namespace>`, PostgreSQL schema, RabbitMQ queue, SQLite file under `.bench-tmp/`) and deletes it afterwards; a crashed or timed-out measurement is cleaned up by a separate clean-up process. Nothing is ever flushed. A system whose server is down is skipped with the reason.",
    "",
  );

  md.push("## Machine", "");
  md.push("| fact | value |", "|---|---|");
  md.push(`| CPU | ${facts.cpu}, ${facts.cores} cores |`, `| memory | ${facts.memoryGiB} GiB (${facts.freeMemoryGiB} GiB free at the end) |`, `| load average (1, 5, 15 min) | at the start ${input.loadAtStart}; at the end ${facts.loadAverage} |`, `| Ferry | commit ${facts.commit} |`, `| OS | ${facts.os} |`, `| Node.js | ${facts.node} |`);
  for (const [name, v] of Object.entries(facts.servers)) md.push(`| ${name} | ${v} |`);
  md.push("", "Packages: " + Object.entries(facts.packages).map(([n, v]) => `${n} ${v}`).join(", ") + ".", "");

  md.push("## Systems and settings", "");
  md.push("| system | kind | server | settings |", "|---|---|---|---|");
  for (const f of input.factories) {
    const kind = f.ferry ? "Ferry" : f.raw ? "raw client (limit)" : "peer";
    const skip = skipped.get(f.name);
    md.push(`| ${f.name} | ${kind} | ${f.server} | ${f.settings}${skip ? ` **Skipped: ${skip}.**` : ""} |`);
  }
  md.push("");

  // Plots.
  const throughputBars: Bar[] = measured.map((f) => {
    const a = byKey.get(`${f.name}/process-c50`);
    const s = a?.metrics.rate;
    return { label: f.name, value: s?.median ?? Number.NaN, ...(s ? { min: s.min, max: s.max } : {}), kind: kindOf(f), ...(a?.capped ? { note: "capped" } : {}) };
  });
  const latencyBars: Bar[] = measured.map((f) => {
    const a = byKey.get(`${f.name}/latency`);
    const s = a?.metrics.p99Ms;
    return { label: f.name, value: s?.median ?? Number.NaN, ...(s ? { min: s.min, max: s.max } : {}), kind: kindOf(f) };
  });
  const tag = input.quick ? "quick indicative run" : `median of ${input.runs} runs`;
  const plots: string[] = [];
  if (throughputBars.some((b) => Number.isFinite(b.value))) {
    const file = resolve(dir, `${stem}-throughput.svg`);
    svgs.push([file, barChart(throughputBars, { title: "Throughput: pre-queued no-op tasks, one worker at concurrency 50 (scenario b)", subtitle: `${formatNumber(params.processN)} tasks; ${tag}`, unit: "tasks/s", log: true })]);
    plots.push(`![throughput at concurrency 50](${basename(file)})`);
  }
  if (latencyBars.some((b) => Number.isFinite(b.value))) {
    const file = resolve(dir, `${stem}-latency.svg`);
    svgs.push([file, barChart(latencyBars, { title: "End-to-end latency p99: enqueue call to handler start (scenario c)", subtitle: `${params.latencyRate} tasks/s for ${params.latencySeconds} s, concurrency ${params.latencyConcurrency}; ${tag}; shorter is better`, unit: "ms", log: true })]);
    plots.push(`![latency p99](${basename(file)})`);
  }
  if (plots.length) md.push("## Plots", "", ...plots.flatMap((p) => [p, ""]));

  md.push("## Results", "");
  md.push(`Medians over runs${input.runs > 1 ? ", min–max in brackets" : ""}. "–" means no value (not applicable, skipped, or failed: see notes).`, "");
  for (const s of input.scenarios) {
    md.push(`### (${s.letter}) ${s.id}: ${s.title}`, "", scenarioParams(s, params) + ".", "");
    const cols = COLUMNS[s.id] ?? [[s.headline.metric, s.headline.label]];
    md.push(`| system | ${cols.map(([, h]) => h).join(" | ")} | notes |`, `|---|${cols.map(() => "---:").join("|")}|---|`);
    for (const f of measured) {
      const a = byKey.get(`${f.name}/${s.id}`);
      if (!a) continue;
      if (a.statuses.length === 1 && a.statuses[0] === "n/a") {
        md.push(`| ${f.name} | ${cols.map(() => "–").join(" | ")} | not applicable: ${a.reasons.join("; ")} |`);
        continue;
      }
      md.push(`| ${f.name} | ${cols.map(([m]) => cell(a.metrics[m], input.runs)).join(" | ")} | ${notes(a, s, params)} |`);
    }
    md.push("");
  }

  md.push(...ratioSection(aggs, input));

  md.push("## Adding a system", "");
  md.push(
    "A system is a `SystemFactory` (bench/systems/types.ts): its server, its settings in words, and `create(namespace)` returning the primitives `enqueueOne`, `enqueueBulk`, optional `enqueueDelayed`, `startWorker(concurrency, handler)`, optional `takeBatch` (backlog scenario), and `teardown`, plus `cleanup(namespace)` for crashed runs. Register it in bench/systems/index.ts. All timing lives in bench/scenarios/, written once for every system. Ferry's systems (bench/systems/ferry.ts) use only its public API (`createFerry`, `defineTask`, `dispatch`, `dispatchMany`, `worker`) and report themselves unavailable until `src/bus/ferry.ts` exports `createFerry`.",
    "",
  );

  md.push("## Reading these numbers", "");
  md.push(
    "- **Raw clients are limits, not competitors**: they have no leases, retries, delays or bookkeeping (the PostgreSQL and SQLite ones delete on receive). A job system's distance from its raw limit is its per-task cost.",
    "- **Defaults are the libraries' own.** BullMQ and bee-queue keep completed jobs by default (`removeOnComplete` / `removeOnSuccess` unset), so their Redis memory grows with every task; `bullmq-removeoncomplete` shows the usual production setting. pg-boss and graphile-worker poll on a timer for work they were not notified of; their tuned systems use their documented batching and polling options.",
    "- **Time caps**: a measurement stops at its cap and reports the rate of what it did, marked \"time cap hit\" (pg-boss with its defaults fetches one job per worker every 2 s, so it never finishes N tasks within the cap).",
    "- Producer and worker share one process in scenarios (c) and (d); the machine has 2 cores shared by the servers, so CPU-bound figures move with the machine's load (see the load averages above).",
    "- **RSS (e)** is the worker process's resident memory when the last task of (b) has started, including Node.js and the tsx loader (about 90 MB for a process that does nothing but load tsx and a client library). In the full run the pre-queueing happens in another process; in `--quick` one process per system pre-queues and then runs c1 and c50 in turn, so its RSS is indicative only.",
    "- Latency and lateness are measured with `performance.timeOrigin + performance.now()` (sub-millisecond) in the process that enqueued; \"received\" counts tasks whose handler started before the drain time ran out, and percentiles are over those only, so a system that received few has optimistic percentiles.",
    "",
  );
  return { markdown: md.join("\n"), svgs };
}
