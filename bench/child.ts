/**
 * The child process of the harness: measures one scenario of one system, so each
 * system's memory and GC are its own. The parent (bench/run.ts) forks it with
 * `--import tsx`, sends one {@link ChildJob} over IPC and reads {@link ChildMessage}s back.
 */
import { findScenario } from "./scenarios/index.ts";
import type { BenchParams, Metrics, ScenarioContext } from "./scenarios/types.ts";
import { loadSystem } from "./systems/index.ts";
import type { BenchSystem } from "./systems/types.ts";

/** What the parent asks a child to do. */
export interface ChildJob {
  system: string;
  scenario: string;
  params: BenchParams;
  namespace: string;
  /**
   * `all`: prepare, measure and tear down in this process; `prepare`: prepare and exit,
   * leaving the data for a `measure` child; `measure`: measure and tear down;
   * `cleanup`: remove what a crashed child left in the namespace.
   */
  phase: "all" | "prepare" | "measure" | "cleanup";
}

/** What a child reports. */
export type ChildMessage =
  | { type: "progress"; text: string }
  | { type: "prepared" }
  | { type: "result"; metrics: Metrics }
  | { type: "not-applicable"; reason: string }
  | { type: "error"; message: string }
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
function progress(text: string): void {
  const now = Date.now();
  if (now - lastProgress < 200) return;
  lastProgress = now;
  void send({ type: "progress", text });
}

async function runJob(job: ChildJob): Promise<void> {
  const factory = await loadSystem(job.system);
  const scenario = findScenario(job.scenario);
  if (!factory || !scenario) throw new Error(`unknown system ${job.system} or scenario ${job.scenario}`);
  if (job.phase === "cleanup") {
    await factory.cleanup(job.namespace);
    return;
  }
  let system: BenchSystem | undefined;
  try {
    system = await factory.create(job.namespace);
    const reason = scenario.notApplicable?.(factory, system);
    if (reason) {
      await send({ type: "not-applicable", reason });
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
      await send({ type: "prepared" });
      system = undefined; // keep the data for the measuring child; the process exit closes connections
      return;
    }
    (globalThis as { gc?: () => void }).gc?.();
    const metrics = await scenario.measure(context());
    await send({ type: "result", metrics });
  } finally {
    if (system) {
      progress("tearing down");
      await system.teardown();
    }
  }
}

process.once("message", (job: ChildJob) => {
  runJob(job).then(
    async () => {
      await send({ type: "done" });
      process.exit(0);
    },
    async (err: unknown) => {
      const message = err instanceof Error ? `${err.message}${err.stack ? `\n${err.stack.split("\n").slice(1, 4).join("\n")}` : ""}` : String(err);
      await send({ type: "error", message });
      process.exit(1);
    },
  );
});
