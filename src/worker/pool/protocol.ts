/**
 * The IPC messages between the pool (in the worker process, which holds the
 * leases) and its executor child processes (which only run handler code).
 */
import { Cancel, RetryLater, Snooze, Unrecoverable } from "../../core/control.ts";
import { ErrorCodes, FerryError, toError, type ErrorCode } from "../../core/errors.ts";
import type { MessageHeaders } from "../../core/envelope.ts";

/** Parent to child: run one handler. */
export interface RunRequest {
  type: "run";
  rid: number;
  task: string;
  payload: unknown;
  ctx: { id: string; channel: string; attempt: number; maxAttempts: number; headers: MessageHeaders };
}

/** Parent to child: abort a running handler (its signal fires with this reason). */
export interface AbortRequest {
  type: "abort";
  rid: number;
  code: ErrorCode;
  message: string;
}

/** Child to parent: the child loaded the app and is ready for work. */
export interface ReadyNotice {
  type: "ready";
  pid: number;
  tasks: string[];
}

/** Child to parent: a handler ended. */
export interface RunResult {
  type: "result";
  rid: number;
  ok: boolean;
  result?: unknown;
  error?: WireError;
  /** The child's resident set size after the run, bytes. */
  rss: number;
}

/** Child to parent: the child could not start (the app failed to load). */
export interface FatalNotice {
  type: "fatal";
  message: string;
}

/** Child to parent: something the parent should log (an unhandled rejection). */
export interface WarningNotice {
  type: "warning";
  code: string;
  message: string;
}

export type ToChild = RunRequest | AbortRequest;
export type FromChild = ReadyNotice | RunResult | FatalNotice | WarningNotice;

/** An error as it crosses the process boundary, keeping what the worker's policy reads. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  delayMs?: number;
  stack?: string;
}

/** Flatten anything thrown into a {@link WireError}. */
export function toWireError(thrown: unknown): WireError {
  const err = toError(thrown);
  const wire: WireError = { name: err.name, message: err.message };
  if (err instanceof FerryError) wire.code = err.code;
  if (err instanceof RetryLater || err instanceof Snooze) wire.delayMs = err.delayMs;
  if (err.stack) wire.stack = err.stack;
  return wire;
}

/** Rebuild the typed error a handler threw, so retry policy treats it the same as in-process. */
export function fromWireError(wire: WireError): Error {
  switch (wire.name) {
    case "RetryLater":
      return new RetryLater(wire.delayMs ?? 0, wire.message);
    case "Snooze":
      return new Snooze(wire.delayMs ?? 0, wire.message);
    case "Cancel":
      return new Cancel(wire.message);
    case "Unrecoverable":
      return new Unrecoverable(wire.message);
    default:
      break;
  }
  if (wire.name === "FerryError" && wire.code && (ErrorCodes as readonly string[]).includes(wire.code)) {
    return new FerryError(wire.code as ErrorCode, wire.message);
  }
  const err = new Error(wire.message);
  err.name = wire.name;
  if (wire.stack) err.stack = wire.stack;
  return err;
}
