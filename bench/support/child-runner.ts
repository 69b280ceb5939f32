/**
 * Forks bench/child.ts for one phase of one system's scenarios and collects its
 * messages, with a hard timeout (the child is killed with SIGKILL when it passes).
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ChildJob, ChildMessage } from "../child.ts";
import type { Metrics } from "../scenarios/types.ts";

const CHILD = fileURLToPath(new URL("../child.ts", import.meta.url));

/** How one scenario of a child ended. */
export interface ChildOutcome {
  status: "ok" | "prepared" | "n/a" | "error" | "timeout";
  metrics?: Metrics;
  /** The error or not-applicable reason. */
  reason?: string;
}

/**
 * Run one child job; `onProgress` receives its progress texts. Resolves with an
 * outcome for every item's scenario (a scenario the child never reported on is an
 * error, or a timeout when the child was killed). A `cleanup` job's items end `ok`.
 */
export function runChild(job: ChildJob, timeoutMs: number, onProgress: (scenario: string, text: string) => void): Promise<Map<string, ChildOutcome>> {
  return new Promise((resolve) => {
    const child = fork(CHILD, [], {
      execArgv: ["--import", "tsx", "--expose-gc"],
      stdio: ["ignore", "ignore", "pipe", "ipc"],
      env: { ...process.env, NODE_ENV: "production" },
    });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const outcomes = new Map<string, ChildOutcome>();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("message", (message: ChildMessage) => {
      switch (message.type) {
        case "progress":
          onProgress(message.scenario, message.text);
          break;
        case "prepared":
          outcomes.set(message.scenario, { status: "prepared" });
          break;
        case "result":
          outcomes.set(message.scenario, { status: "ok", metrics: message.metrics });
          break;
        case "not-applicable":
          outcomes.set(message.scenario, { status: "n/a", reason: message.reason });
          break;
        case "error": {
          const before = outcomes.get(message.scenario);
          // An error after a result (in teardown) keeps the result and notes the error.
          outcomes.set(message.scenario, before?.status === "ok" ? { ...before, reason: `teardown: ${message.message}` } : { status: "error", reason: message.message });
          break;
        }
        case "done":
          break;
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const tail = stderr.trim().split("\n").slice(-5).join("\n");
      for (const item of job.items) {
        if (outcomes.has(item.scenario)) continue;
        if (job.phase === "cleanup" && code === 0) outcomes.set(item.scenario, { status: "ok" });
        else if (timedOut) outcomes.set(item.scenario, { status: "timeout", reason: `no result within ${Math.round(timeoutMs / 1000)} s; killed` });
        else outcomes.set(item.scenario, { status: "error", reason: `child exited with ${signal ?? code} before reporting${tail ? `: ${tail}` : ""}` });
      }
      resolve(outcomes);
    });
    child.send(job);
  });
}
