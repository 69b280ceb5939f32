/**
 * Small statistics helpers: percentiles, medians, rounding for display.
 */

/** The p-th percentile (0-100) of `values` by nearest rank; NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** The median of `values` (mean of the middle two for an even count); NaN for an empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * p50, p95, p99 and max of latencies in ms, rounded to 0.1 ms, named `p50Ms` ... `maxMs`,
 * or with a prefix `smallP50Ms` ... `smallMaxMs`. Default prefix none.
 */
export function latencySummary(values: readonly number[], prefix = ""): Record<string, number> {
  const name = (key: string) => (prefix ? `${prefix}${key[0]!.toUpperCase()}${key.slice(1)}` : key);
  return {
    [name("p50Ms")]: round1(percentile(values, 50)),
    [name("p95Ms")]: round1(percentile(values, 95)),
    [name("p99Ms")]: round1(percentile(values, 99)),
    [name("maxMs")]: round1(percentile(values, 100)),
  };
}

/** Round to one decimal. */
export function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** A number for a table: thousands separated, at most 3 significant decimals for small values. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return "n/a";
  if (Number.isInteger(n)) return n.toLocaleString("en-US");
  const abs = Math.abs(n);
  if (abs >= 100) return Math.round(n).toLocaleString("en-US");
  if (abs >= 10) return n.toFixed(1);
  if (abs >= 1) return n.toFixed(2);
  if (abs === 0) return "0";
  return n.toPrecision(2);
}
