/**
 * The child process of the harness: measures scenarios of one system, so each
 * system's memory and GC are its own. The parent (bench/run.ts) forks it with
 * `--import tsx`, sends one {@link ChildJob} over IPC and reads {@link ChildMessage}s back.
 */
import { findScenario } from "./scenarios/index.ts";
import type { BenchParams, Metrics, ScenarioContext } from "./scenarios/types.ts";
import { loadSystem } from "./systems/index.ts";
import type { BenchSystem, SystemFactory } from "./systems/types.ts";

/** One scenario to run, in its own namespace. */
export interface ChildItem {
  scenario: string;
  namespace: string;
}

/** What the parent asks a child to do. */
export interface ChildJob {
  system: string;
  /** Scenarios, run one after another, each in its own namespace with its own connections. */
  items: ChildItem[];
  params: BenchParams;
  /**
   * `all`: prepare, measure and tear down in this process; `prepare`: prepare and exit,
   * leaving the data for a `measure` child; `measure`: measure and tear down;
   * `cleanup`: remove what a crashed child left in the namespaces.
   */
  phase: "all" | "prepare" | "measure" | "cleanup";
}

/** What a child reports; `scenario` says which item a message is about. */
export type ChildMessage =
  | { type: "progress"; scenario: string; text: string }
  | { type: "prepared"; scenario: string }
  | { type: "result"; scenario: string; metrics: Metrics }
  | { type: "not-applicable"; scenario: string; reason: string }
  | { type: "error"; scenario: string; message: string }
  | { type: "done" };

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) {
      process.stdout.write(JSON.stringify(message) + "\n");
      resolve();
      return;
    }
    process.send(message, undefined, {}, () => resolve());
  });
}

let lastProgress = 0;
function progressFor(scenario: string): (text: string) => void {
  return (text) => {
    const now = Date.now();
    if (now - lastProgress < 200) return;
    lastProgress = now;
    void send({ type: "progress", scenario, text });
  };
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return `${err.message}${err.stack ? `\n${err.stack.split("\n").slice(1, 4).join("\n")}` : ""}`;
}

async function runItem(factory: SystemFactory, item: ChildItem, job: ChildJob): Promise<void> {
  const scenario = findScenario(item.scenario);
  if (!scenario) throw new Error(`unknown scenario ${item.scenario}`);
  const progress = progressFor(item.scenario);
  let system: BenchSystem | undefined;
  try {
    system = await factory.create(item.namespace);
    const reason = scenario.notApplicable?.(factory, system);
    if (reason) {
      await send({ type: "not-applicable", scenario: item.scenario, reason });
      return;
    }
    const context = (): ScenarioContext => ({
      system: system!,
      factory,
      params: job.params,
      deadline: Date.now() + job.params.capMs,
      progress,
    });
    if (job.phase !== "measure" && scenario.prepare) {
      progress("preparing");
      await scenario.prepare(context());
    }
    if (job.phase === "prepare") {
      await send({ type: "prepared", scenario: item.scenario });
      system = undefined; // keep the data for the measuring child; the process exit closes connections
      return;
    }
    (globalThis as { gc?: () => void }).gc?.();
    const metrics = await scenario.measure(context());
    await send({ type: "result", scenario: item.scenario, metrics });
  } finally {
    if (system) {
      progress("tearing down");
      await system.teardown();
    }
  }
}

async function runJob(job: ChildJob): Promise<boolean> {
  const factory = await loadSystem(job.system);
  if (!factory) throw new Error(`unknown system ${job.system}`);
  let ok = true;
  for (const item of job.items) {
    try {
      if (job.phase === "cleanup") await factory.cleanup(item.namespace);
      else await runItem(factory, item, job);
    } catch (err) {
      ok = false;
      await send({ type: "error", scenario: item.scenario, message: describe(err) });
    }
  }
  return ok;
}

process.once("message", (job: ChildJob) => {
  runJob(job).then(
    async (ok) => {
      await send({ type: "done" });
      process.exit(ok ? 0 : 1);
    },
    async (err: unknown) => {
      await send({ type: "error", scenario: job.items[0]?.scenario ?? "", message: describe(err) });
      process.exit(1);
    },
  );
});
