/**
 * Retry policy: how many attempts, and how long to wait before each retry.
 * It lives in the core and is the same for every transport.
 */
import { FerryError } from "./errors.ts";
import { parseDuration, type Duration } from "./duration.ts";

/** Computes the delay (ms) before the attempt after `attempt` failed. */
export type BackoffFunction = (attempt: number, error: Error) => number;

/** Retry options of a task. */
export interface RetryOptions {
  /** Total attempts, the first included. Default 3. */
  attempts?: number;
  /** `"exponential"` (default), `"fixed"`, or a function of the failed attempt number. */
  backoff?: "exponential" | "fixed" | BackoffFunction;
  /** Base delay. Default `"1s"`. */
  delay?: Duration;
  /** Largest delay. Default `"1h"`. */
  maxDelay?: Duration;
  /** Spread each delay by up to this fraction at random, so retries do not stampede. Default 0.2. */
  jitter?: number;
}

/** A resolved retry policy. */
export interface RetryPolicy {
  attempts: number;
  /** The delay in ms before retrying after `attempt` failed. */
  delayFor(attempt: number, error: Error): number;
}

/** The policy used when a task says nothing: 3 attempts, exponential from 1 s, up to 1 h, 20% jitter. */
export const DEFAULT_RETRY: Required<Omit<RetryOptions, "backoff">> & { backoff: "exponential" } = {
  attempts: 3,
  backoff: "exponential",
  delay: "1s",
  maxDelay: "1h",
  jitter: 0.2,
};

/**
 * Resolve retry options into a policy.
 * @throws FerryError `INVALID_OPTION`
 */
export function retryPolicy(options: RetryOptions = {}, random: () => number = Math.random): RetryPolicy {
  const attempts = options.attempts ?? DEFAULT_RETRY.attempts;
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 1000) {
    throw new FerryError("INVALID_OPTION", `retry.attempts must be a whole number from 1 to 1000, got ${String(attempts)}`, { details: { option: "retry.attempts" } });
  }
  const base = parseDuration(options.delay ?? DEFAULT_RETRY.delay, "retry.delay");
  const max = parseDuration(options.maxDelay ?? DEFAULT_RETRY.maxDelay, "retry.maxDelay");
  const jitter = options.jitter ?? DEFAULT_RETRY.jitter;
  if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) {
    throw new FerryError("INVALID_OPTION", `retry.jitter must be a fraction from 0 to 1, got ${String(jitter)}`, { details: { option: "retry.jitter" } });
  }
  const backoff = options.backoff ?? "exponential";
  if (typeof backoff !== "function" && backoff !== "exponential" && backoff !== "fixed") {
    throw new FerryError("INVALID_OPTION", `retry.backoff must be "exponential", "fixed" or a function, got ${JSON.stringify(backoff)}`, { details: { option: "retry.backoff" } });
  }
  return {
    attempts,
    delayFor(attempt, error) {
      let ms: number;
      if (typeof backoff === "function") ms = backoff(attempt, error);
      else if (backoff === "fixed") ms = base;
      else ms = base * 2 ** Math.min(attempt - 1, 40);
      ms = Math.min(Math.max(0, Number.isFinite(ms) ? ms : max), max);
      if (jitter > 0) ms = ms * (1 - jitter + 2 * jitter * random());
      return Math.round(Math.min(ms, max));
    },
  };
}
