/**
 * SQLite failures as FerryErrors, so callers branch on a stable code, and waiting
 * for another process's write lock on timers instead of inside SQLite.
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

/** How long a call waits for another process's write lock unless told otherwise, in ms. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/** A `busyTimeoutMs` option as used: the default when absent, a whole number of ms, at least 0. */
export function busyTimeoutOf(ms: number | undefined): number {
  return Math.max(0, Math.round(ms ?? DEFAULT_BUSY_TIMEOUT_MS));
}

/**
 * Pause before the next try of a call that met another process's write lock, in ms: every
 * millisecond for the first 50 tries, then every 5. A process with work takes the lock back
 * within microseconds of each commit, so sparse tries (SQLite's own handler waits 1, 2, 5, 10,
 * 15, 20, 25... ms) lose to it again and again: two worker processes then share a backlog
 * unevenly, or not at all. A try that fails costs a few microseconds.
 */
const lockRetryMs = (tries: number): number => (tries < 50 ? 1 : 5);

/**
 * Run a store call, waiting out another process's write lock on timers for up to `timeoutMs`
 * (the connection's own `busy_timeout` is 0: SQLite's wait would block the event loop).
 * `fn` must be safe to run again after a lock failure: the callers' calls are each one
 * transaction (`BEGIN IMMEDIATE` is where the lock is taken, and a failure inside rolls back),
 * after writes that a second run finds done. `stillOpen` is checked before each retry and
 * throws once the store closed. The last lock failure is thrown once `timeoutMs` has passed.
 */
export async function lockWait<T>(fn: () => T, timeoutMs: number, stillOpen: () => void): Promise<T> {
  let deadline = 0;
  for (let i = 0; ; i++) {
    try {
      return fn();
    } catch (err) {
      if (!isLocked(err)) throw err;
      const now = performance.now();
      if (i === 0) deadline = now + timeoutMs;
      if (now >= deadline) throw err;
      await new Promise((r) => setTimeout(r, Math.min(lockRetryMs(i), deadline - now)));
      stillOpen();
    }
  }
}
