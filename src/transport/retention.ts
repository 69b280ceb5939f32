/**
 * Retention of finished run records (completed, cancelled, dead-lettered), as the
 * stores that keep them take it: a count per channel and an age, each optional.
 * The Redis transport enforces it as records finish; the PostgreSQL and SQLite
 * transports and RabbitMQ's run store in the background (`retainer.ts`). All read the
 * same options, defaults and URL parameters.
 */
import { parseDuration, type Duration } from "../core/duration.ts";
import { FerryError } from "../core/errors.ts";

/** How long finished records of one state are kept, per channel. */
export interface RetentionRule {
  /** Keep at most this many per channel (oldest deleted first); `Infinity` for no limit. */
  count?: number;
  /** Delete records finished longer ago than this; `Infinity` for no limit. */
  age?: Duration;
}

/** Retention of finished records. */
export interface RetentionOptions {
  /** Completed and cancelled records. Default `{ count: 10_000, age: "1d" }`. */
  completed?: RetentionRule;
  /** Dead-letter records. Default `{ count: 100_000, age: "30d" }`. */
  dead?: RetentionRule;
}

/** A retention rule as numbers: -1 means no limit. */
export interface ResolvedRule {
  count: number;
  ageMs: number;
}

/** Default retention of completed and cancelled records. */
export const DEFAULT_COMPLETED_RETENTION: Required<RetentionRule> = { count: 10_000, age: "1d" };
/** Default retention of dead-letter records. */
export const DEFAULT_DEAD_RETENTION: Required<RetentionRule> = { count: 100_000, age: "30d" };

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

/** Retention rules resolved, by the finished states they govern. */
export interface RetainRules {
  /** Completed and cancelled records. */
  completed: ResolvedRule;
  /** Dead-letter records. */
  dead: ResolvedRule;
}

/**
 * Resolve a transport's `retention` option against the defaults.
 * @throws FerryError `INVALID_OPTION`
 */
export function resolveRetention(options: RetentionOptions | undefined): RetainRules {
  return {
    completed: resolveRule(options?.completed, DEFAULT_COMPLETED_RETENTION, "retention.completed"),
    dead: resolveRule(options?.dead, DEFAULT_DEAD_RETENTION, "retention.dead"),
  };
}

/** True when a rule keeps nothing: records can be deleted as they finish. */
export function keepsNothing(rule: ResolvedRule): boolean {
  return rule.count === 0 || rule.ageMs === 0;
}

/** The URL query parameters of retention, by the option they set. */
export const RETENTION_PARAMS = ["completedCount", "completedAge", "deadCount", "deadAge"] as const;

/**
 * Read retention from a transport URL's query (`completedCount`, `completedAge`,
 * `deadCount`, `deadAge`; `none` for no limit), removing those parameters. Values
 * are checked here (a count, a duration) and again when the transport resolves them.
 * @throws FerryError `INVALID_URL`
 */
export function retentionFromParams(params: URLSearchParams): RetentionOptions | undefined {
  let out: RetentionOptions | undefined;
  for (const name of RETENTION_PARAMS) {
    const text = params.get(name);
    if (text === null) continue;
    params.delete(name);
    const state = name.startsWith("completed") ? "completed" : "dead";
    const rule = ((out ??= {})[state] ??= {});
    if (name.endsWith("Count")) {
      const n = text === "none" ? Infinity : Number(text);
      if (text === "" || !(n === Infinity || (Number.isInteger(n) && n >= 0))) {
        throw new FerryError("INVALID_URL", `${name} must be a whole number >= 0 or "none" in the transport URL, got ${JSON.stringify(text)}`, { details: { option: name } });
      }
      rule.count = n;
    } else {
      const age: Duration = text === "none" ? Infinity : /^\d+$/.test(text) ? Number(text) : text;
      if (age !== Infinity) {
        try {
          parseDuration(age, name);
        } catch (err) {
          throw new FerryError("INVALID_URL", `${name} must be a duration ("30s", "1d", ms) or "none" in the transport URL, got ${JSON.stringify(text)}`, { details: { option: name }, cause: err });
        }
      }
      rule.age = age;
    }
  }
  return out;
}
