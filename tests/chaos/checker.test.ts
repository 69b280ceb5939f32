/**
 * The checker can fail: a lost job, an unexpected run and a duplicate are each
 * found when planted in a real ledger file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { check } from "./checker.ts";
import { EnqueueHistory } from "./history.ts";
import { Ledger } from "./ledger.ts";

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
});
