/**
 * What the CLI prints: aligned tables, one line per run, and a progress bar on
 * stderr for long operations.
 */
import type { RunReport } from "../core/events.ts";

/** A writable text stream (stdout, stderr, or a test's buffer). */
export interface TextOut {
  write(text: string): unknown;
  /** True when the stream is a terminal (the progress bar redraws in place). */
  isTTY?: boolean;
}

/**
 * Format rows as a table with a header line, columns padded to their widest
 * cell; numbers are right-aligned.
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [headers.map(String), ...rows.map((r) => r.map((c) => String(c)))];
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number"));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd())
    .join("\n");
}

/** A duration for people: `850ms`, `2.4s`, `3m10s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms % 60_000) / 1000)}s`;
}

/**
 * One line per run: status, task, message id, attempt, duration, and the error
 * or the time of the next attempt when there is one.
 */
export function formatRun(r: RunReport): string {
  const parts = [r.status.padEnd(9), r.task, r.id, `attempt ${r.attempt}/${r.maxAttempts}`, formatDuration(r.durationMs)];
  if (r.error) parts.push(`${r.error.code}: ${r.error.message}`);
  if (r.nextRunAt !== undefined) parts.push(`next at ${new Date(r.nextRunAt).toISOString()}`);
  return parts.join("  ");
}

/**
 * A progress bar. On a terminal it redraws in place; elsewhere (a pipe, a log
 * file) it prints one line when done, so logs stay readable.
 */
export class ProgressBar {
  readonly #out: TextOut;
  readonly #label: string;
  readonly #width: number;
  #total: number;
  #done = 0;
  #lastDraw = 0;

  /**
   * @param out where to draw (stderr in the CLI)
   * @param label what is being done (`replay`)
   * @param total how many items in all (grows if more turn up)
   * @param width characters in the bar. Default 30.
   */
  constructor(out: TextOut, label: string, total: number, width = 30) {
    this.#out = out;
    this.#label = label;
    this.#total = Math.max(0, total);
    this.#width = width;
  }

  /** Count `n` more items done, and redraw (at most every 50 ms on a terminal). */
  tick(n: number): void {
    this.#done += n;
    if (this.#done > this.#total) this.#total = this.#done;
    if (!this.#out.isTTY) return;
    const now = Date.now();
    if (now - this.#lastDraw < 50) return;
    this.#lastDraw = now;
    this.#out.write(`\r${this.render()}`);
  }

  /** The bar as text: `replay [#######.......]  70/100  70%`. */
  render(): string {
    const ratio = this.#total === 0 ? 1 : this.#done / this.#total;
    const filled = Math.round(ratio * this.#width);
    return `${this.#label} [${"#".repeat(filled)}${".".repeat(this.#width - filled)}] ${this.#done}/${this.#total} ${Math.round(ratio * 100)}%`;
  }

  /** Draw the final state and end the line. */
  finish(): void {
    this.#out.write(`${this.#out.isTTY ? "\r" : ""}${this.render()}\n`);
  }
}
