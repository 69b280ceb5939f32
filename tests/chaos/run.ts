/**
 * The reliability harness (`npm run chaos`). Runs R1 (kill -9 soak) and R4
 * (handler faults) by default, R2 (broker faults) on request, for each chosen
 * transport whose server is reachable, and prints a line per result plus a
 * Markdown table.
 *
 *   npm run chaos -- --quick                       about a minute per transport
 *   npm run chaos -- --transport sqlite --jobs 100000 --workers 4 --concurrency 8 --kill-every 2s
 *   npm run chaos -- --transport redis --duration 60s        enqueue for a minute under kills
 *   npm run chaos -- --transport redis,postgres --r2         broker faults through the TCP fault proxy
 *   npm run chaos -- --transport postgres --r2-restart       crash (SIGKILL) and restart the real server mid-run (shared servers: see docs)
 *   npm run chaos -- --r4-pool --rate 100 --duration 20s     R4 through the executor process pool, undisturbed vs poison
 *
 * Flags: --quick, --transport sqlite|redis|postgres|amqp|all (comma list; default all),
 * --jobs N (R1 jobs, default 100,000, quick 10,000; R2 jobs, default: through the proxy, for as long as every
 * kind of fault takes to hit once, about 30 s; on a restart 20,000, quick 5,000), --workers N (default 4, quick 2),
 * --concurrency N (default 8), --kill-every DURATION (default 2s, quick 1s),
 * --duration DURATION (R1 enqueues for this long instead of --jobs; R4 pool sends no-ops this long, default 20s),
 * --r1 --r4 --r4-pool --r2 --r2-restart (which tests; default R1, R4 and R4 through the pool),
 * --rate N (R4 pool no-ops per second, default 100), --no-baseline (skip
 * R1's undisturbed run), --no-rejection-guard (R4 workers without a process-level
 * unhandledRejection handler), --json FILE (write every result), --verbose.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parseDuration } from "../../src/index.ts";
import { describeR1, runR1, type R1Result } from "./r1-soak.ts";
import { describeR2, runR2, type R2Result } from "./r2-broker.ts";
import { describeR4, r4ChecksPass, runR4, type R4Result } from "./r4-faults.ts";
import { describeR4Pool, latencyRatio, poolChecksPass, R4_POOL_CHANNEL, runR4Pool, type R4PoolPair } from "./r4-pool.ts";
import { makeTarget, TARGET_NAMES, targetSkipReason, type TargetName } from "./targets.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    transport: { type: "string", default: "all" },
    jobs: { type: "string" },
    workers: { type: "string" },
    concurrency: { type: "string" },
    "kill-every": { type: "string" },
    duration: { type: "string" },
    r1: { type: "boolean", default: false },
    r4: { type: "boolean", default: false },
    "r4-pool": { type: "boolean", default: false },
    rate: { type: "string" },
    r2: { type: "boolean", default: false },
    "r2-restart": { type: "boolean", default: false },
    "no-baseline": { type: "boolean", default: false },
    "no-rejection-guard": { type: "boolean", default: false },
    json: { type: "string" },
    verbose: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});

if (values.help) {
  console.log("usage: npm run chaos -- [--quick] [--transport sqlite|redis|postgres|amqp|all] [--jobs N] [--workers N] [--concurrency N] [--kill-every 2s] [--duration 60s] [--r1] [--r4] [--r4-pool] [--rate 100] [--r2] [--r2-restart] [--no-baseline] [--no-rejection-guard] [--json FILE] [--verbose]");
  process.exit(0);
}

function int(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a whole number >= 1, got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return n;
}

const quick = values.quick;
const jobs = int("jobs", values.jobs, quick ? 10_000 : 100_000);
const workers = int("workers", values.workers, quick ? 2 : 4);
const concurrency = int("concurrency", values.concurrency, 8);
const killEveryMs = parseDuration(values["kill-every"] ?? (quick ? "1s" : "2s"), "--kill-every");
const durationMs = values.duration === undefined ? undefined : parseDuration(values.duration, "--duration");
const chosen = values.transport === "all" ? [...TARGET_NAMES] : values.transport.split(",").map((t) => t.trim());
for (const t of chosen) {
  if (!TARGET_NAMES.includes(t as TargetName)) {
    console.error(`unknown transport "${t}"; use one of ${TARGET_NAMES.join(", ")} or all`);
    process.exit(2);
  }
}
const anyChosen = values.r1 || values.r4 || values["r4-pool"] || values.r2 || values["r2-restart"];
const doR1 = values.r1 || !anyChosen;
const doR4 = values.r4 || !anyChosen;
const doR4Pool = values["r4-pool"] || !anyChosen;
const rate = int("rate", values.rate, 100);
const verbose = values.verbose;

const r1Results: Array<{ calm?: R1Result; kills: R1Result }> = [];
const r4Results: R4Result[] = [];
const r2Results: R2Result[] = [];
const r4PoolResults: R4PoolPair[] = [];
let failures = 0;

function progress(label: string) {
  return (p: { done: number; acked: number; kills: number; elapsedMs: number }) => {
    if (process.stderr.isTTY) process.stderr.write(`\r${label}: ${p.done}/${p.acked} done, ${p.kills} kills, ${(p.elapsedMs / 1000).toFixed(0)} s   `);
  };
}
const endProgress = () => process.stderr.isTTY && process.stderr.write("\r\x1b[K");

async function withTarget<T>(name: TargetName, label: string, channels: string[], fn: (t: ReturnType<typeof makeTarget>) => Promise<T>): Promise<T> {
  const target = makeTarget(name, label);
  try {
    return await fn(target);
  } finally {
    await target.cleanup(channels).catch((err) => console.error(`cleanup of ${name} failed: ${(err as Error).message}`));
  }
}

for (const name of chosen as TargetName[]) {
  const skip = await targetSkipReason(name).catch((err: Error) => err.message);
  if (skip) {
    console.log(`-- ${name}: skipped (${skip})`);
    continue;
  }
  if (doR1) {
    let calm: R1Result | undefined;
    if (!values["no-baseline"]) {
      calm = await withTarget(name, "r1calm", ["chaos-r1"], (target) =>
        runR1({ target, jobs, durationMs, workers, concurrency, killEveryMs: 0, verbose, onTick: progress(`R1 ${name} undisturbed`) }),
      );
      endProgress();
      console.log(describeR1(calm));
    }
    const kills = await withTarget(name, "r1kill", ["chaos-r1"], (target) =>
      runR1({ target, jobs, durationMs, workers, concurrency, killEveryMs, verbose, onTick: progress(`R1 ${name} kill -9`) }),
    );
    endProgress();
    console.log(describeR1(kills));
    if (calm) console.log(`   throughput under kills / undisturbed: ${(kills.throughput / Math.max(1, calm.throughput)).toFixed(2)}`);
    if (kills.check.lost > 0 || kills.check.unexpected > 0 || kills.leftCompleted > 0 || !kills.drained) {
      failures++;
      console.log(`   FAIL: lost ids ${kills.check.lostIds.join(", ")}; states ${JSON.stringify(kills.lostStates)}`);
    }
    if (kills.check.duplicates > kills.ceiling) {
      // RELIABILITY.md R1: duplicates at most kills x concurrency.
      failures++;
      console.log(`   FAIL: duplicates ${kills.check.duplicates} above the ceiling ${kills.ceiling} (kills x concurrency)`);
    }
    r1Results.push({ ...(calm ? { calm } : {}), kills });
  }
  if (doR4) {
    const r4 = await withTarget(name, "r4", ["chaos-r4", "chaos-r4-crash"], (target) =>
      runR4({ target, jobs: quick ? 1000 : 5000, poison: 3, attempts: 3, workers: 2, concurrency, guardRejections: !values["no-rejection-guard"], verbose }),
    );
    console.log(describeR4(r4));
    if (!r4ChecksPass(r4)) {
      failures++;
      console.log("   FAIL: see above");
    }
    r4Results.push(r4);
  }
  if (doR4Pool) {
    const run = (poison: boolean) =>
      withTarget(name, poison ? "r4poolpoison" : "r4poolcalm", [R4_POOL_CHANNEL], (target) => runR4Pool({ target, poison, rate, durationMs: durationMs ?? 20_000, verbose }));
    const pair = { calm: await run(false), poison: await run(true) };
    console.log(describeR4Pool(pair.calm));
    console.log(describeR4Pool(pair.poison));
    const ratio = latencyRatio(pair);
    console.log(`   no-op p99 with poison / undisturbed: ${ratio.toFixed(2)}${ratio > 2 ? " (over 2)" : ""}`);
    if (!poolChecksPass(pair.poison) || !poolChecksPass(pair.calm)) {
      failures++;
      console.log(`   FAIL: lost ids ${pair.poison.check.lostIds.join(", ")}; see above`);
    }
    r4PoolResults.push(pair);
  }
  for (const mode of [values.r2 ? "proxy" : undefined, values["r2-restart"] ? "restart" : undefined]) {
    if (!mode) continue;
    if (name === "sqlite") {
      console.log("-- sqlite: R2 skipped (no server: the kill -9 soak already kills the process owning the file)");
      continue;
    }
    const r2 = await withTarget(name, `r2${mode}`, ["chaos-r1"], (target) =>
      runR2({ target, mode: mode as "proxy" | "restart", ...(values.jobs !== undefined ? { jobs } : mode === "restart" ? { jobs: quick ? 5000 : 20_000 } : {}), workers: 2, concurrency, verbose }),
    );
    console.log(describeR2(r2));
    if (r2.soak.check.lost > 0 || r2.soak.check.unexpected > 0 || !r2.soak.drained || r2.faults.length === 0) {
      if (r2.faults.length === 0) console.log("   no fault was injected before the run ended: it tested nothing");
      failures++;
      console.log(`   FAIL: lost ids ${r2.soak.check.lostIds.join(", ")}; states ${JSON.stringify(r2.soak.lostStates)}`);
    }
    r2Results.push(r2);
  }
}

if (r1Results.length > 0) {
  console.log("\n| transport | jobs | workers x conc | kill every | kills | lost | unexpected | duplicates (ceiling) | left completed | jobs/s under kills | jobs/s undisturbed |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const { calm, kills: k } of r1Results) {
    console.log(`| ${k.transport} | ${k.check.acked} | ${k.workers} x ${k.concurrency} | ${k.killEveryMs} ms | ${k.kills} | ${k.check.lost} | ${k.check.unexpected} | ${k.check.duplicates} (${k.ceiling}) | ${k.leftCompleted} of ${k.completedSampled} | ${k.throughput} | ${calm?.throughput ?? "-"} |`);
  }
}
if (r4PoolResults.length > 0) {
  console.log("\n| transport | must complete | lost | unexpected | duplicates | worker crashes | executors started | throw | timeout | hang | exit | leak | no-op p50 / p99 undisturbed | no-op p50 / p99 with poison | p99 ratio |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const { calm, poison: p } of r4PoolResults) {
    const kinds = p.faults.map((f) => `${f.deadAtN}/${f.messages} at N, ${f.runs} runs`);
    console.log(`| ${p.transport} | ${p.check.acked} | ${p.check.lost} | ${p.check.unexpected} | ${p.check.duplicates} | ${p.workerCrashes} | ${p.executorsSpawned} | ${kinds.join(" | ")} | ${calm.latency.p50} / ${calm.latency.p99} ms | ${p.latency.p50} / ${p.latency.p99} ms | ${latencyRatio({ calm, poison: p }).toFixed(2)} |`);
  }
}
if (values.json) writeFileSync(values.json, JSON.stringify({ r1: r1Results, r4: r4Results, r4Pool: r4PoolResults, r2: r2Results }, null, 2));
console.log(failures === 0 ? "\nchaos: all checks passed" : `\nchaos: ${failures} check(s) failed`);
process.exitCode = failures === 0 ? 0 : 1;
