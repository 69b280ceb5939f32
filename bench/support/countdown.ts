/**
 * Wait until a handler has been called a number of times, or a deadline passes.
 */

/** A counter that resolves `done` at `target` hits or at the deadline. */
export interface Countdown {
  /** Count one hit. */
  hit(): void;
  /** Hits so far. */
  readonly count: number;
  /** Resolves `"done"` at the target, `"timeout"` at the deadline. */
  readonly done: Promise<"done" | "timeout">;
}

/** Create a {@link Countdown} for `target` hits that gives up at `deadline` (ms since the epoch). */
export function countdown(target: number, deadline: number): Countdown {
  let count = 0;
  let resolve!: (v: "done" | "timeout") => void;
  const done = new Promise<"done" | "timeout">((r) => (resolve = r));
  const timer = setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now()));
  if (target <= 0) {
    clearTimeout(timer);
    resolve("done");
  }
  return {
    hit() {
      if (++count === target) {
        clearTimeout(timer);
        resolve("done");
      }
    },
    get count() {
      return count;
    },
    done,
  };
}
