/**
 * Errors a handler throws to steer its message. Each is a control-flow signal,
 * not a failure report: the worker reads its type and acts.
 */
import { parseDuration, type Duration } from "./duration.ts";

/** Retry this attempt later. Uses an attempt; dead-letters when none are left. */
export class RetryLater extends Error {
  /** Milliseconds until the next attempt. */
  readonly delayMs: number;
  constructor(delay: Duration = 0, message = "retry later") {
    super(message);
    this.name = "RetryLater";
    this.delayMs = parseDuration(delay, "RetryLater delay");
  }
}

/** Run again later without using an attempt (a resource is busy, not broken). */
export class Snooze extends Error {
  /** Milliseconds until the message is due again. */
  readonly delayMs: number;
  constructor(delay: Duration, message = "snoozed") {
    super(message);
    this.name = "Snooze";
    this.delayMs = parseDuration(delay, "Snooze delay");
  }
}

/** Stop this message for good; it is recorded as cancelled, not failed. */
export class Cancel extends Error {
  constructor(message = "cancelled") {
    super(message);
    this.name = "Cancel";
  }
}

/** A permanent failure: no retry, straight to the dead-letter store. */
export class Unrecoverable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "Unrecoverable";
  }
}
