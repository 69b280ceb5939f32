/**
 * R4 small, in `npm test`: handlers that throw, time out, hang ignoring the
 * abort, call `process.exit`, leave a rejection unhandled, or leak memory until
 * their process dies, mixed with no-op jobs on one SQLite file. Every poison
 * message is dead-lettered after exactly N attempts (crashes counted), and
 * the other jobs all complete.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeR4, runR4 } from "./r4-faults.ts";
import { makeTarget } from "./targets.ts";

describe("R4 handler faults on SQLite", () => {
  it("poison messages reach the dead-letter store after exactly N attempts; other jobs keep flowing", { timeout: 240_000 }, async () => {
    const target = makeTarget("sqlite", "r4test");
    try {
      const r = await runR4({ target, jobs: 600, poison: 2, attempts: 3, unhandled: 10, workers: 2, concurrency: 4, deadlineMs: 200_000 });
      console.log(describeR4(r));
      assert.equal(r.drained, true, "every job finished and every poison message is dead before the deadline");
      assert.equal(r.check.lost, 0, `lost ${r.check.lostIds.join(", ")}`);
      assert.equal(r.check.unexpected, 0);
      assert.equal(r.check.acked, 610);
      assert.deepEqual(r.sendErrors, {}, "every send was stored");
      assert.ok(r.faults.every((f) => f.messages === 2), "every poison message was sent");
      for (const f of r.faults) {
        assert.equal(f.dead, f.messages, `${f.kind}: every poison message is dead`);
        assert.equal(f.deadAtN, f.messages, `${f.kind}: the last failure recorded is attempt N=${r.attempts}`);
        assert.ok(f.maxAttemptRun <= r.attempts, `${f.kind}: no handler ran past attempt N`);
        assert.equal(f.runs, f.messages * r.attempts, `${f.kind}: each poison message's handler ran exactly N times`);
      }
      const byKind = Object.fromEntries(r.faults.map((f) => [f.kind, f]));
      assert.deepEqual(byKind.throw!.finalCodes, { HANDLER_FAILED: 2 }, "throwing handlers end with their own error");
      assert.deepEqual(byKind.timeout!.finalCodes, { TIMEOUT: 2 }, "a handler past its timeout is aborted");
      assert.deepEqual(byKind.hang!.finalCodes, { TIMEOUT: 2 }, "a handler ignoring the abort still ends its attempt at the timeout");
      assert.deepEqual(byKind.exit!.finalCodes, { WORKER_CRASHED: 2 }, "process.exit counts as a crashed attempt");
      assert.deepEqual(byKind.leak!.finalCodes, { WORKER_CRASHED: 2 }, "running out of memory counts as a crashed attempt");
      assert.equal(r.crashes, 2 * 2 * r.attempts, "each exit and leak attempt crashed its worker process, which was restarted");
      assert.ok(r.rejectionsCaught >= 10, "the worker process survived unhandled rejections");
    } finally {
      await target.cleanup(["chaos-r4", "chaos-r4-crash"]);
    }
  });
});
