/**
 * Options of the Redis transport, and how a `redis://` URL maps onto them.
 */
import type { RedisOptions } from "ioredis";
import type { Clock } from "../../core/clock.ts";
import { parseDuration, type Duration } from "../../core/duration.ts";
import { FerryError } from "../../core/errors.ts";

/** How long finished records of one state are kept, per channel. */
export interface RetentionRule {
  /** Keep at most this many per channel (oldest deleted first); `Infinity` for no limit. */
  count?: number;
  /** Delete records finished longer ago than this; `Infinity` for no limit. */
  age?: Duration;
}

/** Retention of finished records, enforced as they finish (bounded work per call). */
export interface RetentionOptions {
  /** Completed and cancelled records. Default `{ count: 10_000, age: "1d" }`. */
  completed?: RetentionRule;
  /** Dead-letter records. Default `{ count: 100_000, age: "30d" }`. */
  dead?: RetentionRule;
}

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

/** A retention rule as the scripts take it: -1 means no limit. */
export interface ResolvedRule {
  count: number;
  ageMs: number;
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
 * Resolve a retention rule to numbers (-1: no limit).
 * @throws FerryError `INVALID_OPTION`
 */
export function resolveRule(rule: RetentionRule | undefined, fallback: Required<RetentionRule>, what: string): ResolvedRule {
  const count = rule?.count ?? fallback.count;
  const age = rule?.age ?? fallback.age;
  if (count !== Infinity && (!Number.isInteger(count) || count < 0)) {
    throw new FerryError("INVALID_OPTION", `${what}.count must be a whole number >= 0 or Infinity, got ${String(count)}`, { details: { option: `${what}.count` } });
  }
  return { count: count === Infinity ? -1 : count, ageMs: age === Infinity ? -1 : parseDuration(age, `${what}.age`) };
}

/** Default retention of completed and cancelled records. */
export const DEFAULT_COMPLETED_RETENTION: Required<RetentionRule> = { count: 10_000, age: "1d" };
/** Default retention of dead-letter records. */
export const DEFAULT_DEAD_RETENTION: Required<RetentionRule> = { count: 100_000, age: "30d" };

/**
 * Split a transport URL into the connection URL (query removed) and Ferry's own
 * query options (`?prefix=`).
 * @throws FerryError `INVALID_URL`
 */
export function optionsFromUrl(url: URL): RedisTransportOptions {
  const connection = new URL(url.toString());
  const prefix = connection.searchParams.get("prefix");
  for (const key of connection.searchParams.keys()) {
    if (key !== "prefix") throw new FerryError("INVALID_URL", `unknown query option "${key}" in a redis transport URL; known: prefix`, { details: { option: key } });
  }
  connection.search = "";
  if (!/^\/?\d*$/.test(connection.pathname)) {
    throw new FerryError("INVALID_URL", `the path of a redis URL is the database number (e.g. "/0"), got "${connection.pathname}"`);
  }
  const options: RedisTransportOptions = { url: connection.toString() };
  if (prefix !== null) options.prefix = checkPrefix(prefix);
  return options;
}
