/**
 * Running one handler with its timeout, and turning how it ended into what
 * happens to the message: ack, retry at a time, snooze, or dead-letter.
 */
import { Cancel, RetryLater, Snooze, Unrecoverable } from "../core/control.ts";
import { FerryError, toError } from "../core/errors.ts";
import type { AttemptError } from "../transport/types.ts";
import type { TaskContext, TaskDefinition } from "../bus/define.ts";
import { whenAborted, type RunControl } from "./run-control.ts";

/**
 * Run a handler, racing it against its signal: a timeout (or a lost lease, or
 * shutdown) ends the attempt even when the handler ignores the signal.
 */
export async function runHandler(task: TaskDefinition, payload: unknown, ctx: TaskContext, controller: AbortController | RunControl): Promise<unknown> {
  let rejectRun!: (reason: unknown) => void;
  const aborted = new Promise<never>((_, reject) => (rejectRun = reject));
  aborted.catch(() => undefined);
  const stopListening = whenAborted(controller, rejectRun);
  const timer = setTimeout(() => {
    controller.abort(new FerryError("TIMEOUT", `task "${task.name}" ran past its timeout of ${task.timeoutMs} ms; raise "timeout" in defineTask if it needs longer`));
  }, task.timeoutMs);
  try {
    return await Promise.race([Promise.resolve().then(() => task.run(payload, ctx)), aborted]);
  } finally {
    clearTimeout(timer);
    stopListening();
  }
}

/** What to do with a message after an attempt failed. */
export type FailureDecision =
  | { kind: "retry"; delayMs: number; error: AttemptError }
  | { kind: "snooze"; delayMs: number }
  | { kind: "cancel"; error: AttemptError }
  | { kind: "dead"; error: AttemptError };

/** A stable code for what a handler threw. */
export function errorCode(err: Error): string {
  if (err instanceof FerryError) return err.code;
  if (err instanceof Unrecoverable) return "UNRECOVERABLE";
  if (err instanceof RetryLater) return "RETRY_LATER";
  if (err instanceof Cancel) return "CANCELLED";
  return "HANDLER_FAILED";
}

/** The attempt error record for a thrown value. */
export function attemptError(thrown: unknown, attempt: number, at: number): AttemptError {
  const err = toError(thrown);
  const message = err.message.length > 2000 ? `${err.message.slice(0, 2000)}...` : err.message;
  return { at, attempt, code: errorCode(err), message };
}

/**
 * Decide a failed attempt's fate. Policy lives here, the same for every transport:
 * snooze uses no attempt; `Unrecoverable` and invalid payloads go straight to the
 * dead-letter store; anything else retries by the task's backoff until its
 * attempts are used up.
 */
export function decideFailure(thrown: unknown, task: TaskDefinition | undefined, attempt: number, maxAttempts: number, now: number): FailureDecision {
  if (thrown instanceof Snooze) return { kind: "snooze", delayMs: thrown.delayMs };
  const error = attemptError(thrown, attempt, now);
  if (thrown instanceof Cancel) return { kind: "cancel", error };
  if (thrown instanceof Unrecoverable) return { kind: "dead", error };
  if (thrown instanceof FerryError && (thrown.code === "INVALID_PAYLOAD" || thrown.code === "NO_HANDLER" || thrown.code === "UNRECOVERABLE")) return { kind: "dead", error };
  if (attempt >= maxAttempts) return { kind: "dead", error };
  const delayMs = thrown instanceof RetryLater ? thrown.delayMs : task ? task.retry.delayFor(attempt, toError(thrown)) : 1000;
  return { kind: "retry", delayMs, error };
}
