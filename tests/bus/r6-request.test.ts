/**
 * R6: 10,000 concurrent request() calls on every transport, each matched to its
 * own caller, none crossed, nothing left pending.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { createFerry, defineTask } from "../../src/index.ts";
import { makeTarget, targetSkipReason, TARGET_NAMES, type Target } from "../chaos/targets.ts";

const N = Number(process.env.FERRY_R6_REQUESTS ?? 10_000);
const double = defineTask("r6.double", { channel: "r6", run: (p: unknown) => ({ i: (p as { i: number }).i, double: (p as { i: number }).i * 2 }) });

describe(`R6: ${N} concurrent requests`, () => {
  const targets: Array<{ target: Target; channels: string[] }> = [];
  after(async () => {
    for (const { target, channels } of targets) await target.cleanup(channels);
  });

  for (const name of TARGET_NAMES) {
    it(`on ${name}: every caller gets its own reply`, async (t) => {
      const skip = await targetSkipReason(name);
      if (skip) return t.skip(skip);
      const target = makeTarget(name, "r6");
      const entry = { target, channels: ["r6"] };
      targets.push(entry);
      const requester = createFerry({ transport: target.url, tasks: [double] });
      const workers = createFerry({ transport: target.url, tasks: [double] });
      await workers.worker({ concurrency: 50 }).start();
      const replies = await Promise.all(Array.from({ length: N }, (_, i) => requester.request(double, { i }, { timeout: "120s" })));
      const crossed = replies.filter((r, i) => r.i !== i || r.double !== i * 2).length;
      assert.equal(crossed, 0, "no reply reached the wrong caller");
      const stats = await requester.requestStats();
      entry.channels.push(...stats.inboxes);
      assert.equal(stats.pending, 0, "no pending entry left behind");
      assert.equal(stats.lateReplies, 0);
      t.diagnostic(`${name}: ${N} requests matched, 0 crossed, 0 pending`);
      await requester.close();
      await workers.close();
    });
  }
});
