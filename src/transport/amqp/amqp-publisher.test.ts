import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveOptions } from "./amqp-options.ts";
import { HOLD_MS, HOP_MARGIN_MS, LAG_HALF_LIFE_MS, MAX_HOP_MARGIN_MS, Publisher } from "./amqp-publisher.ts";
import { bucketFor } from "./topology.ts";

describe("amqp delay routing", () => {
  const publisher = () => new Publisher(resolveOptions({ url: "amqp://127.0.0.1", runStore: false }));
  const now = 1_000_000;

  it("holds the last stretch in memory and sends the rest to the bucket below the delay less the margin", () => {
    const p = publisher();
    assert.equal(p.margin(now), HOP_MARGIN_MS);
    assert.equal(p.route(now + HOLD_MS, now), undefined, "due within the hold window: straight to the queue");
    assert.equal(p.route(now + 1000, now), bucketFor(1000 - HOP_MARGIN_MS));
    for (const delay of [101, 500, 1000, 60_000, 86_400_000]) {
      const k = p.route(now + delay, now)!;
      assert.ok(2 ** k <= delay - HOP_MARGIN_MS, `a ${delay} ms delay never comes back after its due time less the margin`);
    }
  });

  it("widens the margin after late hops, and lets it decay", () => {
    const p = publisher();
    p.observeHopLag(200, now);
    assert.equal(p.margin(now), 300);
    assert.ok(p.holds(now + 600, now), "twice the margin is held in memory");
    assert.equal(p.route(now + 2000, now), bucketFor(1700));
    assert.equal(p.margin(now + LAG_HALF_LIFE_MS), 150, "half the lag after one half-life");
    p.observeHopLag(10_000, now);
    assert.equal(p.margin(now), MAX_HOP_MARGIN_MS);
  });
});
