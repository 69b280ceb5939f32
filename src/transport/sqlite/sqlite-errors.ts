/**
 * SQLite failures as FerryErrors, so callers branch on a stable code.
 */
import { FerryError } from "../../core/errors.ts";

/**
 * Turn a driver error (SQLITE_BUSY once the wait for the write lock ran out, SQLITE_FULL,
 * SQLITE_IOERR, a corrupt file...) into FerryError `TRANSPORT_UNAVAILABLE`
 * with the driver's error kept as `cause`. FerryErrors pass through unchanged.
 */
export function storeError(err: unknown, operation: string, path: string): unknown {
  if (err instanceof FerryError) return err;
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string" && code.startsWith("SQLITE_")) {
    const hint = code.startsWith("SQLITE_BUSY") ? " (another process held the write lock past busyTimeoutMs; raise it or shorten that process's transactions)" : "";
    return new FerryError("TRANSPORT_UNAVAILABLE", `SQLite ${operation} failed on ${JSON.stringify(path)}: ${code}${hint}: ${(err as Error).message}`, { cause: err, details: { sqliteCode: code, operation } });
  }
  return err;
}

/** Wrap a synchronous store call so driver errors become {@link storeError}s. */
export function guarded<A extends unknown[], R>(fn: (...args: A) => R, operation: string, path: string): (...args: A) => R {
  return (...args: A): R => {
    try {
      return fn(...args);
    } catch (err) {
      throw storeError(err, operation, path);
    }
  };
}

/** True when a store call failed because another connection held the write lock (nothing was done). */
export function isLocked(err: unknown): boolean {
  const code = err instanceof FerryError ? err.details?.sqliteCode : (err as { code?: unknown })?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}
