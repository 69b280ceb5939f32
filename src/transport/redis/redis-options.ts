/**
 * Options of the Redis transport, and how a `redis://` URL maps onto them.
 */
import type { RedisOptions } from "ioredis";
import type { Clock } from "../../core/clock.ts";
import { FerryError } from "../../core/errors.ts";
import { RETENTION_PARAMS, retentionFromParams, type RetentionOptions } from "../retention.ts";

export type { RetentionOptions, RetentionRule } from "../retention.ts";

/** Receives the transport's warnings: lost and restored connections, unsafe server settings. */
export type WarningHandler = (message: string) => void;

/** Options of {@link RedisTransport.open}. */
export interface RedisTransportOptions {
  /** `redis://[:password@]host:port/db` or `rediss://...` (TLS). Default `redis://127.0.0.1:6379/0`. */
  url?: string | URL;
  /** Extra ioredis options, merged over what the URL gives. Default none. */
  redis?: RedisOptions;
  /**
   * Prefix of every key this transport touches (letters, digits, `_ - . : { }`).
   * Wrap it in braces (`{ferry}`) to keep all keys in one cluster slot. Default `"ferry"`.
   */
  prefix?: string;
  /** Retention of finished records. Defaults in {@link RetentionOptions}. */
  retention?: RetentionOptions;
  /** Where warnings go. Default `console.warn`. */
  onWarning?: WarningHandler;
  /** Check `maxmemory-policy` and persistence on open and warn when unsafe. Default `true`. */
  checkServer?: boolean;
  /** Messages per Lua call in a bulk send; larger sends run one call per chunk, pipelined (each chunk atomic). Default `250`. */
  sendChunk?: number;
  /**
   * For tests only: take "now" from this clock instead of the Redis server's
   * `TIME`, and sleep on it while waiting (no wake-up on send then). Default:
   * the server's clock, which is what production wants.
   */
  clock?: Clock;
}

const PREFIX_PATTERN = /^[A-Za-z0-9_.:{}-]{1,100}$/;

/**
 * Check a key prefix.
 * @throws FerryError `INVALID_OPTION`
 */
export function checkPrefix(prefix: string): string {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new FerryError("INVALID_OPTION", `redis prefix ${JSON.stringify(prefix)} is not valid: use 1-100 of letters, digits, "_", "-", ".", ":", "{", "}"`, { details: { option: "prefix" } });
  }
  return prefix;
}

/**
 * Split a transport URL into the connection URL (query removed) and Ferry's own
 * query options (`?prefix=` and retention: `completedCount`, `completedAge`, `deadCount`,
 * `deadAge`, `none` for no limit).
 * @throws FerryError `INVALID_URL`
 */
export function optionsFromUrl(url: URL): RedisTransportOptions {
  const connection = new URL(url.toString());
  const prefix = connection.searchParams.get("prefix");
  connection.searchParams.delete("prefix");
  const retention = retentionFromParams(connection.searchParams);
  for (const key of connection.searchParams.keys()) {
    throw new FerryError("INVALID_URL", `unknown query option "${key}" in a redis transport URL; known: prefix, ${RETENTION_PARAMS.join(", ")}`, { details: { option: key } });
  }
  connection.search = "";
  if (!/^\/?\d*$/.test(connection.pathname)) {
    throw new FerryError("INVALID_URL", `the path of a redis URL is the database number (e.g. "/0"), got "${connection.pathname}"`);
  }
  const options: RedisTransportOptions = { url: connection.toString() };
  if (prefix !== null) options.prefix = checkPrefix(prefix);
  if (retention) options.retention = retention;
  return options;
}
