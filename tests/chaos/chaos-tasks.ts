/**
 * The tasks chaos worker processes run: a no-op that writes the ledger, and
 * the R4 fault tasks (throw, timeout, hang ignoring the abort, `process.exit`,
 * an unhandled rejection, memory exhaustion). Each appends to the ledger before
 * doing its fault (`start`) or before returning (`done`).
 */
import { defineTask, type TaskDefinition } from "../../src/index.ts";
import type { Ledger } from "./ledger.ts";

/** Names of the chaos tasks. */
export const CHAOS_TASKS = {
  noop: "chaos.noop",
  throw: "chaos.throw",
  timeout: "chaos.timeout",
  hang: "chaos.hang",
  exit: "chaos.exit",
  unhandled: "chaos.unhandled",
  leak: "chaos.leak",
} as const;

/** A fault kind of R4. */
export type FaultKind = Exclude<keyof typeof CHAOS_TASKS, "noop">;

/** Fault kinds that never succeed: they must reach the dead-letter store. */
export const POISON_FAULTS: readonly FaultKind[] = ["throw", "timeout", "hang", "exit", "leak"];

/** The handler timeout of the timeout and hang tasks. Default 300 ms. */
export const FAULT_TIMEOUT = "300ms";

/** Memory kept alive by the leak task until the process dies. */
const hoard: unknown[] = [];

/** Build every chaos task around one ledger. */
export function chaosTasks(ledger: Ledger): TaskDefinition[] {
  const retry = { backoff: "fixed" as const, delay: "50ms", jitter: 0 };
  return [
    defineTask(CHAOS_TASKS.noop, {
      retry,
      async run(_payload, ctx) {
        await ledger.append(ctx.id, ctx.attempt, ctx.task, "done");
        return undefined;
      },
    }),
    defineTask(CHAOS_TASKS.throw, {
      retry,
      async run(_payload, ctx) {
        await ledger.append(ctx.id, ctx.attempt, ctx.task, "start");
        throw new Error(`chaos: ${ctx.task} fails on purpose (attempt ${ctx.attempt})`);
      },
    }),
    defineTask(CHAOS_TASKS.timeout, {
      retry,
      timeout: FAULT_TIMEOUT,
      async run(_payload, ctx) {
        await ledger.append(ctx.id, ctx.attempt, ctx.task, "start");
        // Honours the abort: rejects when the timeout fires.
        await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true }));
      },
    }),
    defineTask(CHAOS_TASKS.hang, {
      retry,
      timeout: FAULT_TIMEOUT,
      async run(_payload, ctx) {
        await ledger.append(ctx.id, ctx.attempt, ctx.task, "start");
        // Ignores the abort and never settles.
        await new Promise(() => undefined);
      },
    }),
    defineTask(CHAOS_TASKS.exit, {
      retry,
      async run(_payload, ctx) {
        await ledger.append(ctx.id, ctx.attempt, ctx.task, "start");
        process.exit(3);
      },
    }),
    defineTask(CHAOS_TASKS.unhandled, {
      retry,
      async run(_payload, ctx) {
        // A rejection nobody handles; the handler itself succeeds.
        void Promise.reject(new Error(`chaos: unhandled rejection from ${ctx.id}`));
        await ledger.append(ctx.id, ctx.attempt, ctx.task, "done");
        return undefined;
      },
    }),
    defineTask(CHAOS_TASKS.leak, {
      retry,
      async run(_payload, ctx) {
        await ledger.append(ctx.id, ctx.attempt, ctx.task, "start");
        // Allocate until V8 gives up and the process dies.
        for (;;) hoard.push(new Array(250_000).fill(ctx.attempt));
      },
    }),
  ];
}
