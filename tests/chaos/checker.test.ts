/**
 * The checker can fail: a lost job, an unexpected run and a duplicate are each
 * found when planted in a real ledger file; R4 fails when poison was never sent.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { FaultKind } from "./chaos-tasks.ts";
import { check } from "./checker.ts";
import { EnqueueHistory } from "./history.ts";
import { Ledger } from "./ledger.ts";
import { r4ChecksPass, type FaultOutcome, type R4Result } from "./r4-faults.ts";

describe("chaos checker", () => {
  it("finds lost, unexpected and duplicate runs, and owes nothing for failed sends", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ferry-chaos-checker-"));
    const ledger = new Ledger(join(dir, "ledger.db"));
    try {
      const history = new EnqueueHistory();
      history.sent(["a", "b", "c", "d"], "chaos.noop");
      history.acked(["a", "b", "c"]);
      history.failed(["d"], "timed out");
      await Promise.all([
        ledger.append("a", 1, "chaos.noop"),
        ledger.append("b", 1, "chaos.noop"),
        ledger.append("b", 2, "chaos.noop"),
        ledger.append("d", 1, "chaos.noop"),
        ledger.append("zzz", 1, "chaos.noop"),
        ledger.append("c", 1, "chaos.noop", "start"),
      ]);
      const result = check(history, ledger.rows("done"));
      assert.equal(result.acked, 3);
      assert.equal(result.lost, 1, "c only started");
      assert.deepEqual(result.lostIds, ["c"]);
      assert.equal(result.unexpected, 1, "zzz was never enqueued");
      assert.equal(result.duplicates, 1, "b ran twice");
      assert.equal(result.extraRuns, 1);
      assert.equal(result.failedSends, 1);
      assert.equal(result.ranAfterFailedSend, 1, "d's send failed but it was stored and ran");
      assert.equal(ledger.doneCount(), 4, "distinct messages with a done row: a, b, d, zzz");
      assert.deepEqual(check(history, ledger.rows("done"), ["chaos.other"]).acked, 0, "a task filter keeps other tasks out");
    } finally {
      ledger.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("R4 fails a run whose poison messages of one kind were never sent, instead of passing it with nothing to check", () => {
    const fault = (kind: FaultKind, messages: number): FaultOutcome => ({ kind, messages, dead: messages, deadAtN: messages, runs: messages * 3, maxAttemptRun: messages > 0 ? 3 : 0, finalCodes: {}, finalAttempts: {} });
    const clean = { acked: 10, failedSends: 0, lost: 0, lostIds: [], unexpected: 0, duplicates: 0, extraRuns: 0, ranAfterFailedSend: 0 };
    const run = (exitMessages: number, sendErrors: Record<string, number> = {}): R4Result => ({
      transport: "sqlite", attempts: 3, poison: 2, faults: [fault("throw", 2), fault("exit", exitMessages)], sendErrors, check: clean,
      crashes: 0, crashReasons: {}, rejectionsCaught: 0, drained: true, elapsedMs: 1, throughput: 1,
    });
    assert.equal(r4ChecksPass(run(2)), true);
    assert.equal(r4ChecksPass(run(0, { "connection lost": 2 })), false, "a kind with no message sent");
    assert.equal(r4ChecksPass(run(1, { "connection lost": 1 })), false, "a kind short of messages");
  });
});
