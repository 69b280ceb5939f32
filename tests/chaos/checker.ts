/**
 * The checker: compares the enqueue history with the run ledger.
 *
 * - lost: an acknowledged enqueue with no completed run (must be 0);
 * - unexpected: a completed run of a message never enqueued (must be 0);
 * - duplicates: messages that completed more than once, against a ceiling.
 */
import type { EnqueueHistory } from "./history.ts";
import type { LedgerRow } from "./ledger.ts";

/** What the checker found. */
export interface CheckResult {
  /** Acknowledged enqueues checked. */
  acked: number;
  /** Enqueues whose send failed (not owed; reported). */
  failedSends: number;
  /** Acknowledged enqueues with no `done` row. */
  lost: number;
  /** Up to 20 lost ids, for a repro. */
  lostIds: string[];
  /** `done` rows for ids never enqueued. */
  unexpected: number;
  /** Messages with more than one `done` row. */
  duplicates: number;
  /** `done` rows beyond the first per message. */
  extraRuns: number;
  /** Messages whose send failed but which ran anyway (stored before the failure was seen). */
  ranAfterFailedSend: number;
}

/**
 * Check `done` rows of the ledger against the history, for the tasks in `tasks`
 * (default: every task in the history).
 */
export function check(history: EnqueueHistory, done: readonly LedgerRow[], tasks?: readonly string[]): CheckResult {
  const wanted = tasks ? new Set(tasks) : undefined;
  const runs = new Map<string, number>();
  let unexpected = 0;
  for (const row of done) {
    if (row.kind !== "done") continue;
    if (wanted && !wanted.has(row.task)) continue;
    if (!history.get(row.messageId)) unexpected++;
    runs.set(row.messageId, (runs.get(row.messageId) ?? 0) + 1);
  }
  let acked = 0;
  let failedSends = 0;
  let ranAfterFailedSend = 0;
  const lostIds: string[] = [];
  let lost = 0;
  for (const e of history.entries()) {
    if (wanted && !wanted.has(e.task)) continue;
    if (e.state === "acked") {
      acked++;
      if (!runs.has(e.id)) {
        lost++;
        if (lostIds.length < 20) lostIds.push(e.id);
      }
    } else {
      failedSends++;
      if (runs.has(e.id)) ranAfterFailedSend++;
    }
  }
  let duplicates = 0;
  let extraRuns = 0;
  for (const n of runs.values()) {
    if (n > 1) {
      duplicates++;
      extraRuns += n - 1;
    }
  }
  return { acked, failedSends, lost, lostIds, unexpected, duplicates, extraRuns, ranAfterFailedSend };
}
