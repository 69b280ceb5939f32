/**
 * One error hierarchy with stable codes. Callers branch on `code`, never on the
 * message text; every message says what to do about it.
 */

/** Every stable code a {@link FerryError} can carry. */
export const ErrorCodes = [
  "INVALID_NAME",
  "INVALID_PAYLOAD",
  "INVALID_OPTION",
  "INVALID_URL",
  "INVALID_MESSAGE",
  "UNKNOWN_TRANSPORT",
  "UNKNOWN_TASK",
  "UNKNOWN_CHANNEL",
  "NO_HANDLER",
  "DUPLICATE_TASK",
  "TRANSPORT_UNAVAILABLE",
  "TRANSPORT_CLOSED",
  "LEASE_LOST",
  "TIMEOUT",
  "ABORTED",
  "HANDLER_FAILED",
  "CANCELLED",
  "UNRECOVERABLE",
  "WORKER_CRASHED",
  "REQUEST_TIMEOUT",
  "NOT_FOUND",
  "NOT_SUPPORTED",
  "CONFIG_INVALID",
] as const;

/** A stable error code. */
export type ErrorCode = (typeof ErrorCodes)[number];

/** Options of a {@link FerryError}. */
export interface FerryErrorOptions {
  /** The error that caused this one, kept as is (a thrown non-Error too). */
  cause?: unknown;
  /** Structured facts that help a caller act (the offending field, the limit). */
  details?: Record<string, unknown>;
}

/** The one error type Ferry throws. `code` is stable; branch on it. */
export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FerryError";
    this.code = code;
    this.details = options.details;
  }

  /** A plain JSON form, for run records, logs and HTTP bodies. */
  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** True when `err` is a {@link FerryError}, optionally with the given code. */
export function isFerryError(err: unknown, code?: ErrorCode): err is FerryError {
  return err instanceof FerryError && (code === undefined || err.code === code);
}

/**
 * Coerce anything thrown into an `Error`. A thrown non-Error (a string, an
 * object) becomes an `Error` whose `cause` keeps the original.
 */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  let text: string;
  try {
    text = typeof thrown === "string" ? thrown : JSON.stringify(thrown) ?? String(thrown);
  } catch {
    text = String(thrown);
  }
  return new Error(`non-Error thrown: ${text}`, { cause: thrown });
}
