/**
 * R4 through the executor process pool, small, in `npm test`: one worker
 * process running its handlers in executor child processes (as
 * `ferry worker --processes 2`), no-op jobs at a steady rate, and poison
 * messages of every kind (throw, timeout, hang ignoring the abort,
 * `process.exit`, memory leak until the executor dies) plus jobs that leave a
 * rejection unhandled, on one SQLite channel. Nothing is lost, the worker
 * process never dies, and each poison message is dead-lettered after exactly
 * N handler runs. Latency is measured by `npm run chaos -- --r4-pool`, not
 * asserted here.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeR4Pool, poolChecksPass, R4_POOL_CHANNEL, runR4Pool } from "./r4-pool.ts";
import { makeTarget } from "./targets.ts";

describe("R4 through the executor process pool on SQLite", () => {
  it("poison of every kind is dead after exactly N handler runs; nothing is lost; the worker process survives", { timeout: 120_000 }, async () => {
    const target = makeTarget("sqlite", "r4pooltest");
    try {
      const r = await runR4Pool({ target, poison: true, rate: 50, durationMs: 6000, perKind: 1, attempts: 3, unhandled: 5, deadlineMs: 90_000 });
      console.log(describeR4Pool(r));
      assert.equal(r.drained, true, "every job finished and every poison message is dead before the deadline");
      assert.equal(r.check.lost, 0, `lost ${r.check.lostIds.join(", ")}`);
      assert.equal(r.check.unexpected, 0);
      assert.equal(r.check.acked, 300 + 5);
      assert.equal(r.workerCrashes, 0, "only executors die, never the worker process");
      assert.deepEqual(r.sendErrors, {}, "every send was stored");
      assert.ok(poolChecksPass(r), "the pool run kept every promise it checks");
      for (const f of r.faults) {
        assert.equal(f.dead, f.messages, `${f.kind}: every poison message is dead`);
        assert.equal(f.deadAtN, f.messages, `${f.kind}: the last failure recorded is attempt N=${r.attempts}`);
        assert.equal(f.runs, f.messages * r.attempts, `${f.kind}: each poison message's handler ran exactly N times`);
      }
      const codes = Object.fromEntries(r.faults.map((f) => [f.kind, f.finalCodes]));
      assert.deepEqual(codes, {
        throw: { HANDLER_FAILED: 1 },
        timeout: { TIMEOUT: 1 },
        hang: { TIMEOUT: 1 },
        exit: { WORKER_CRASHED: 1 },
        leak: { WORKER_CRASHED: 1 },
      });
      assert.equal(r.warnings.UNHANDLED_REJECTION, 5, "each unhandled rejection was reported and its executor lived on");
    } finally {
      await target.cleanup([R4_POOL_CHANNEL]);
    }
  });
});
