import { FerryError } from "./errors.ts";

/**
 * Refuse an options object that is not an object or carries a key not in
 * `allowed` (a typo such as `dealy` must not be silently ignored).
 * @throws FerryError `INVALID_OPTION`
 */
export function checkOptionKeys(options: unknown, allowed: readonly string[], what: string): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new FerryError("INVALID_OPTION", `${what} options must be an object`, { details: { option: what } });
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new FerryError("INVALID_OPTION", `${what}: unknown option "${key}"; known options: ${allowed.join(", ")}`, { details: { option: key } });
    }
  }
}

/**
 * Check a whole number within bounds.
 * @throws FerryError `INVALID_OPTION`
 */
export function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new FerryError("INVALID_OPTION", `${name} must be a whole number from ${min} to ${max}, got ${String(value)}`, { details: { option: name } });
  }
  return value;
}
