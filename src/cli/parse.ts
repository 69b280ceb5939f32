/**
 * Option parsers for the CLI. A bad value is reported the way commander reports
 * a bad flag (exit code 2).
 */
import { InvalidArgumentError } from "commander";
import { parseDuration } from "../core/duration.ts";

/** Parse `a,b,c` into a list of non-empty names. */
export function parseList(value: string): string[] {
  const list = value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (list.length === 0) throw new InvalidArgumentError("expected a comma-separated list, e.g. emails,integrations");
  return list;
}

/** A parser for whole numbers from `min` to `max`. */
export function parseInteger(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** Check a duration (`"30s"`, `"500ms"`, or milliseconds) and return it as given. */
export function parseDurationOption(value: string): string | number {
  const text = value.trim();
  const out = /^\d+$/.test(text) ? Number(text) : text;
  try {
    parseDuration(out);
  } catch {
    throw new InvalidArgumentError('expected a duration like "500ms", "30s", "5m" or a number of milliseconds');
  }
  return out;
}
