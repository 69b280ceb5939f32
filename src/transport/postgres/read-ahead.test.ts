/**
 * The read-ahead's sizing policy, over a store that leases from an endless backlog after
 * a short delay (the policy only; the PostgreSQL tests run it against the server).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createEnvelope } from "../../core/envelope.ts";
import { ReadAhead, type Leased, type ReadAheadStore } from "./read-ahead.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A store with an endless backlog whose lease statements take `delayMs`; records each ask. */
function backlogStore(delayMs: number): ReadAheadStore & { asks: number[]; released: number } {
  let seq = 0;
  const store = {
    asks: [] as number[],
    released: 0,
    async lease(channels: readonly string[], max: number): Promise<Leased[]> {
      store.asks.push(max);
      await sleep(delayMs);
      return Array.from({ length: max }, () => {
        const message = createEnvelope({ name: "ra.test", channel: channels[0]!, payload: null });
        return { delivery: { message, token: "t", leaseExpiresAt: Date.now() + 30_000 }, priority: 0, wasDue: 0, seq: ++seq };
      });
    },
    async release(items: readonly unknown[]): Promise<void> {
      store.released += items.length;
    },
  };
  return store;
}

/** A consumer loop at concurrency 1: what the transport's receive does with a signal. */
async function consume(ahead: ReadAhead, n: number, perMessageMs: number, signal: AbortSignal): Promise<void> {
  for (let done = 0; done < n; ) {
    let got = await ahead.take(["ra"], 1, 30_000, signal);
    if (got.length === 0) got = await ahead.lease(["ra"], 1, 30_000, signal);
    done += got.length;
    if (perMessageMs > 0) await sleep(perMessageMs);
  }
}

describe("postgres read-ahead sizing", () => {
  it("a consumer that outruns its refills holds more ahead, up to the cap", async () => {
    const store = backlogStore(2);
    const ahead = new ReadAhead(store);
    const stop = new AbortController();
    await consume(ahead, 3000, 0, stop.signal);
    stop.abort();
    await ahead.close();
    assert.equal(store.asks[0], 1, "the first receive asks for what it needs");
    assert.equal(Math.max(...store.asks), 250, `asks grew to the cap: ${store.asks.slice(0, 12).join(", ")} ...`);
    assert.ok(store.asks.length < 60, `3,000 messages took ${store.asks.length} lease statements`);
  });

  it("a consumer slower than its refills keeps four times its ask", async () => {
    const store = backlogStore(1);
    const ahead = new ReadAhead(store);
    const stop = new AbortController();
    await consume(ahead, 40, 10, stop.signal);
    stop.abort();
    await ahead.close();
    assert.ok(Math.max(...store.asks) <= 5, `asks stayed small: ${store.asks.join(", ")}`);
  });
});
