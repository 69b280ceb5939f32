/**
 * Forks bench/child.ts for one phase of one measurement and collects its messages,
 * with a hard timeout (the child is killed with SIGKILL when it passes).
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ChildJob, ChildMessage } from "../child.ts";
import type { Metrics } from "../scenarios/types.ts";

const CHILD = fileURLToPath(new URL("../child.ts", import.meta.url));

/** How one child ended. */
export interface ChildOutcome {
  status: "ok" | "prepared" | "n/a" | "error" | "timeout";
  metrics?: Metrics;
  /** The error or not-applicable reason. */
  reason?: string;
}

/** Run one child job; `onProgress` receives its progress texts. */
export function runChild(job: ChildJob, timeoutMs: number, onProgress: (text: string) => void): Promise<ChildOutcome> {
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
    let outcome: ChildOutcome | undefined;
    const timer = setTimeout(() => {
      outcome = { status: "timeout", reason: `no result within ${Math.round(timeoutMs / 1000)} s; killed` };
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("message", (message: ChildMessage) => {
      switch (message.type) {
        case "progress":
          onProgress(message.text);
          break;
        case "prepared":
          outcome ??= { status: "prepared" };
          break;
        case "result":
          outcome ??= { status: "ok", metrics: message.metrics };
          break;
        case "not-applicable":
          outcome ??= { status: "n/a", reason: message.reason };
          break;
        case "error":
          if (!outcome || outcome.status === "ok") outcome = { status: "error", reason: message.message, ...(outcome?.metrics ? { metrics: outcome.metrics } : {}) };
          break;
        case "done":
          break;
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (!outcome) {
        const tail = stderr.trim().split("\n").slice(-5).join("\n");
        outcome = { status: "error", reason: `child exited with ${signal ?? code} before reporting${tail ? `: ${tail}` : ""}` };
      } else if (outcome.status === "ok" && code !== 0 && job.phase !== "prepare") {
        outcome = { ...outcome, reason: `child exited with ${signal ?? code} after its result` };
      }
      resolve(outcome);
    });
    child.send(job);
  });
}
