/**
 * PostgreSQL driver errors to {@link FerryError}s with stable codes, so callers
 * branch on a code and the message says what to do.
 */
import { FerryError } from "../../core/errors.ts";

const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "EAI_AGAIN"]);

/** True when `err` means the server cannot be reached or dropped the connection. */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== "object") return false;
  const code = typeof e.code === "string" ? e.code : "";
  if (CONNECTION_CODES.has(code)) return true;
  // SQLSTATE classes 08 (connection exception), 57P (operator intervention: shutdown), 53 (insufficient resources).
  if (/^(08|57P|53)/.test(code)) return true;
  const message = typeof e.message === "string" ? e.message : "";
  return /Connection terminated|connection timeout|Client has encountered a connection error|Client was closed/i.test(message);
}

/**
 * Wrap a driver error. Connection failures become `TRANSPORT_UNAVAILABLE`; a
 * missing schema or table becomes `CONFIG_INVALID`; bad input data becomes
 * `INVALID_MESSAGE`; anything else `TRANSPORT_UNAVAILABLE` with the cause kept.
 */
export function mapPgError(err: unknown, doing: string, schema: string): FerryError {
  if (err instanceof FerryError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === "string" ? e.code : "";
  const text = typeof e?.message === "string" ? e.message : String(err);
  if (isConnectionError(err)) {
    return new FerryError("TRANSPORT_UNAVAILABLE", `PostgreSQL is unreachable while ${doing} (${text}); check the server and the connection string, Ferry retries when it is back`, { cause: err, details: { sqlstate: code } });
  }
  if (code === "42P01" || code === "3F000" || code === "42883") {
    return new FerryError("CONFIG_INVALID", `Ferry's schema "${schema}" is missing or out of date while ${doing} (${text}); run \`ferry migrate\` or open the transport with migrate: true`, { cause: err, details: { sqlstate: code } });
  }
  if (code.startsWith("22")) {
    return new FerryError("INVALID_MESSAGE", `PostgreSQL refused the data while ${doing}: ${text}`, { cause: err, details: { sqlstate: code } });
  }
  return new FerryError("TRANSPORT_UNAVAILABLE", `PostgreSQL failed while ${doing}: ${text}`, { cause: err, details: { sqlstate: code } });
}
