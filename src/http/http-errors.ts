/**
 * Errors of the HTTP API. Every refusal answers `{ error: { code, message } }`
 * with a stable code; Ferry's own codes (`INVALID_PAYLOAD`, `UNKNOWN_TASK`...)
 * pass through, and the codes below name what only HTTP can get wrong.
 */
import { FerryError, type ErrorCode } from "../core/errors.ts";

/** Codes that only the HTTP layer produces, each with its status. */
export const HTTP_ERROR_STATUS = {
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  CROSS_SITE: 403,
  NOT_FOUND: 404,
  UNKNOWN_EVENT: 404,
  NOT_DEAD: 409,
  IDEMPOTENCY_CONFLICT: 409,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  INVALID_JSON: 400,
  TOO_DEEP: 400,
  TOO_MANY_KEYS: 400,
  FORBIDDEN_KEY: 400,
  INVALID_ID: 400,
  INVALID_HEADER: 400,
  TOO_MANY_STREAMS: 429,
  INTERNAL: 500,
} as const;

/** A stable code of the HTTP API: an HTTP-only code or a Ferry error code. */
export type HttpErrorCode = keyof typeof HTTP_ERROR_STATUS | ErrorCode;

/** The status each Ferry error code answers with over HTTP. Unlisted codes answer 500. */
const FERRY_STATUS: Partial<Record<ErrorCode, number>> = {
  INVALID_NAME: 400,
  INVALID_PAYLOAD: 400,
  INVALID_OPTION: 400,
  INVALID_MESSAGE: 400,
  INVALID_URL: 400,
  UNKNOWN_TASK: 404,
  UNKNOWN_CHANNEL: 404,
  NOT_FOUND: 404,
  NOT_SUPPORTED: 501,
  TRANSPORT_UNAVAILABLE: 503,
  TRANSPORT_CLOSED: 503,
};

/** An HTTP refusal: a status, a stable code and a message the caller can act on. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: HttpErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: HttpErrorCode, message: string, details?: Record<string, unknown>, status?: number) {
    super(message);
    this.name = "HttpError";
    this.code = code;
    this.details = details;
    this.status = status ?? (HTTP_ERROR_STATUS as Record<string, number>)[code] ?? FERRY_STATUS[code as ErrorCode] ?? 500;
  }
}

/** The JSON body of an error response. */
export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/**
 * Turn anything thrown while answering into a status and body. A `FerryError`
 * keeps its code and details; anything else becomes a 500 `INTERNAL` whose
 * message reveals nothing of the server.
 */
export function toErrorResponse(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof HttpError) {
    return { status: err.status, body: { error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } } };
  }
  if (err instanceof FerryError) {
    return { status: FERRY_STATUS[err.code] ?? 500, body: { error: err.toJSON() } };
  }
  return { status: 500, body: { error: { code: "INTERNAL", message: "the server failed to answer; the failure is logged" } } };
}
