import { FerryError } from "./errors.ts";

/** A duration: milliseconds as a number, or text such as `"250ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`. */
export type Duration = number | string;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
/** The longest duration Ferry accepts: 10 years. */
export const MAX_DURATION_MS = 10 * 365 * 86_400_000;

/**
 * Parse a {@link Duration} into whole milliseconds.
 * @throws FerryError `INVALID_OPTION` for a negative, non-finite or unreadable value.
 */
export function parseDuration(value: Duration, what = "duration"): number {
  let ms: number;
  if (typeof value === "number") {
    ms = value;
  } else if (typeof value === "string") {
    const match = PATTERN.exec(value.trim());
    if (!match) {
      throw new FerryError("INVALID_OPTION", `${what} "${value}" is not a duration; use a number of milliseconds or text like "500ms", "30s", "5m", "2h", "1d"`, { details: { option: what } });
    }
    ms = Number(match[1]) * UNITS[match[2]!]!;
  } else {
    throw new FerryError("INVALID_OPTION", `${what} must be a number of milliseconds or a string like "30s", got ${typeof value}`, { details: { option: what } });
  }
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_DURATION_MS) {
    throw new FerryError("INVALID_OPTION", `${what} must be between 0 and 10 years, got ${String(value)}`, { details: { option: what } });
  }
  return Math.round(ms);
}
