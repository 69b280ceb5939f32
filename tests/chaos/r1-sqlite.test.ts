/**
 * R1 small, in `npm test`: 10,000 tasks, 2 worker processes on one SQLite
 * file, one killed with SIGKILL every second and restarted. Nothing
 * acknowledged is lost, nothing unexpected runs, duplicates stay under
 * kills x concurrency, and completed jobs stay completed.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeR1, runR1 } from "./r1-soak.ts";
import { makeTarget } from "./targets.ts";

describe("R1 kill -9 soak on SQLite", () => {
  it("10,000 tasks, 2 workers x 8, SIGKILL every second: 0 lost, 0 unexpected, duplicates under the ceiling", { timeout: 180_000 }, async () => {
    const target = makeTarget("sqlite", "r1test");
    try {
      const r = await runR1({ target, jobs: 10_000, workers: 2, concurrency: 8, killEveryMs: 1000, deadlineMs: 150_000 });
      console.log(describeR1(r));
      assert.equal(r.drained, true, "every acknowledged job completed before the deadline");
      assert.equal(r.check.acked, 10_000);
      assert.ok(r.kills >= 1, "at least one worker was killed");
      assert.equal(r.check.lost, 0, `lost ${r.check.lostIds.join(", ")} (states ${JSON.stringify(r.lostStates)})`);
      assert.equal(r.check.unexpected, 0);
      assert.ok(r.check.duplicates <= r.ceiling, `duplicates ${r.check.duplicates} above kills x concurrency ${r.ceiling}`);
      assert.ok(r.completedSampled > 0, "some completed jobs were sampled");
      assert.equal(r.leftCompleted, 0, "a completed job changed state");
    } finally {
      await target.cleanup(["chaos-r1"]);
    }
  });
});
