import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveOptions } from "./amqp-options.ts";
import { HOLD_MS, HOLD_WINDOW_MS, HOP_MARGIN_MS, LAG_HALF_LIFE_MS, MAX_HOP_MARGIN_MS, Publisher } from "./amqp-publisher.ts";
import { bucketFor } from "./topology.ts";

describe("amqp delay routing", () => {
  const publisher = () => new Publisher(resolveOptions({ url: "amqp://127.0.0.1", runStore: false }));
  const now = 1_000_000;

  it("sends a copy due within the hold window straight to its queue", () => {
    const p = publisher();
    assert.equal(p.margin(now), HOP_MARGIN_MS);
    assert.equal(p.route(now + HOLD_MS, now), undefined);
    assert.equal(p.route(now + HOLD_WINDOW_MS, now), undefined);
    assert.ok(p.holds(now + HOLD_MS, now) && !p.holds(now + HOLD_MS + 1, now), "only the last stretch is always held");
    assert.ok(p.inWindow(now + HOLD_WINDOW_MS, now) && !p.inWindow(now + HOLD_WINDOW_MS + 1, now));
  });

  it("sends a longer delay to the bucket that brings it back inside the window, early", () => {
    const p = publisher();
    for (const delay of [HOLD_WINDOW_MS + 1, 1100, 1500, 2000, 3000, 5000, 60_000, 86_400_000]) {
      const k = p.route(now + delay, now)!;
      assert.ok(2 ** k <= delay - HOP_MARGIN_MS, `a ${delay} ms delay never comes back after its due time less the margin`);
      const left = delay - 2 ** k;
      if (2 ** bucketFor(delay - HOP_MARGIN_MS) >= delay - HOLD_WINDOW_MS) {
        assert.ok(left <= HOLD_WINDOW_MS, `a ${delay} ms delay comes back inside the window (${left} ms left)`);
        assert.ok(k === 0 || delay - 2 ** (k - 1) > HOLD_WINDOW_MS, `a ${delay} ms delay takes the shortest such bucket`);
      } else assert.equal(k, bucketFor(delay - HOP_MARGIN_MS), `a ${delay} ms delay takes the largest bucket, then hops`);
    }
    assert.equal(p.route(now + 1100, now), 7, "1,100 ms: 128 ms in a bucket, then 972 ms in memory");
    assert.equal(p.route(now + 5000, now), 12, "5,000 ms: 4,096 ms in a bucket, then 904 ms in memory");
  });

  it("a consumer with full holds sends a copy inside the window to the largest bucket that fits", () => {
    const p = publisher();
    assert.equal(p.hopRoute(now + 600, now), bucketFor(600 - HOP_MARGIN_MS));
    assert.equal(p.hopRoute(now + HOLD_MS, now), undefined, "too close for a hop: straight back to its queue");
    assert.equal(p.hopRoute(now + 5000, now), p.route(now + 5000, now));
  });

  it("widens the margin after late hops, and lets it decay", () => {
    const p = publisher();
    p.observeHopLag(200, now);
    assert.equal(p.margin(now), 300);
    assert.ok(p.holds(now + 600, now), "twice the margin is held in memory");
    assert.equal(p.hopRoute(now + 700, now), bucketFor(400));
    assert.equal(p.margin(now + LAG_HALF_LIFE_MS), 150, "half the lag after one half-life");
    p.observeHopLag(10_000, now);
    assert.equal(p.margin(now), MAX_HOP_MARGIN_MS);
    assert.ok(p.inWindow(now + 2 * MAX_HOP_MARGIN_MS, now), "the window is at least twice the margin");
    assert.equal(p.route(now + 2 * MAX_HOP_MARGIN_MS + 1000, now), 10, "1,024 ms in a bucket brings it back inside the widened window");
  });
});
