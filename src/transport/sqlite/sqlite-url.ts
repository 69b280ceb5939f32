/**
 * `sqlite://` URLs to transport options.
 *
 * - `sqlite://./data/ferry.db`: relative to the working folder (`new URL()` reads
 *   "." as a host, so the path is taken from the text after `sqlite://`).
 * - `sqlite://data/ferry.db`: relative too.
 * - `sqlite:///var/lib/app/ferry.db`: absolute.
 * - Query options: `synchronous` (off|normal|full|extra), `busyTimeout` (ms),
 *   `recheck` (ms), `watch` (true|false), e.g. `sqlite://./ferry.db?synchronous=full`;
 *   retention: `completedCount`, `completedAge`, `deadCount`, `deadAge` (`none`: no limit).
 */
import { FerryError } from "../../core/errors.ts";
import { RETENTION_PARAMS, retentionFromParams, type RetentionOptions } from "../retention.ts";
import type { SqliteSynchronous } from "./sqlite-schema.ts";

/** What a `sqlite://` URL says. */
export interface SqliteUrlOptions {
  path: string;
  synchronous?: SqliteSynchronous;
  busyTimeoutMs?: number;
  recheckMs?: number;
  watch?: boolean;
  retention?: RetentionOptions;
}

const SYNCHRONOUS = new Set(["off", "normal", "full", "extra"]);
const KNOWN = new Set(["synchronous", "busyTimeout", "recheck", "watch"]);

function bad(url: string, why: string): never {
  throw new FerryError("INVALID_URL", `SQLite URL ${JSON.stringify(url)} ${why}; expected e.g. "sqlite://./data/ferry.db" or "sqlite:///abs/path/ferry.db?synchronous=full"`);
}

function ms(url: string, name: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) bad(url, `has ${name}=${text}, which is not a whole number of milliseconds`);
  return n;
}

/**
 * Read a `sqlite://` URL.
 * @throws FerryError `INVALID_URL`
 */
export function parseSqliteUrl(url: URL): SqliteUrlOptions {
  const href = url.href;
  if (url.protocol !== "sqlite:" || !href.startsWith("sqlite://")) bad(href, "must start with sqlite://");
  const rest = href.slice("sqlite://".length);
  const end = rest.search(/[?#]/);
  let path: string;
  try {
    path = decodeURIComponent(end === -1 ? rest : rest.slice(0, end));
  } catch {
    bad(href, "has a badly escaped path");
  }
  if (path.length === 0 || path.endsWith("/")) bad(href, "has no file name");
  if (path.includes("\0")) bad(href, "has a NUL in its path");
  const options: SqliteUrlOptions = { path };
  const params = new URLSearchParams(url.searchParams);
  const retention = retentionFromParams(params);
  if (retention) options.retention = retention;
  for (const [key, value] of params) {
    if (!KNOWN.has(key)) bad(href, `has an unknown option "${key}" (known: ${[...KNOWN, ...RETENTION_PARAMS].join(", ")})`);
    if (key === "synchronous") {
      const v = value.toLowerCase();
      if (!SYNCHRONOUS.has(v)) bad(href, `has synchronous=${value}; use off, normal, full or extra`);
      options.synchronous = v as SqliteSynchronous;
    } else if (key === "busyTimeout") options.busyTimeoutMs = ms(href, key, value);
    else if (key === "recheck") options.recheckMs = ms(href, key, value);
    else if (key === "watch") {
      if (value !== "true" && value !== "false") bad(href, `has watch=${value}; use true or false`);
      options.watch = value === "true";
    }
  }
  return options;
}
