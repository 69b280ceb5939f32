/**
 * The read-ahead's sizing policy, over a store that leases from an endless backlog after
 * a short delay (the policy only; the PostgreSQL tests run it against the server).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createEnvelope } from "../core/envelope.ts";
import { ReadAhead, type Leased, type ReadAheadStore } from "./read-ahead.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A store with an endless backlog whose lease statements take `delayMs`; records each ask. */
function backlogStore(delayMs: number): ReadAheadStore & { asks: number[] } {
  let seq = 0;
  const store = {
    asks: [] as number[],
    async lease(channels: readonly string[], max: number): Promise<Leased[]> {
      store.asks.push(max);
      await sleep(delayMs);
      return Array.from({ length: max }, () => {
        const message = createEnvelope({ name: "ra.test", channel: channels[0]!, payload: null });
        return { delivery: { message, token: "t", leaseExpiresAt: Date.now() + 30_000 }, priority: 0, wasDue: 0, seq: ++seq };
      });
    },
    async release(): Promise<void> {},
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

/** The lease statements' asks while one consumer takes `n` messages from a backlog. */
async function asksOf(leaseDelayMs: number, n: number, perMessageMs: number): Promise<number[]> {
  const store = backlogStore(leaseDelayMs);
  const ahead = new ReadAhead(store);
  const stop = new AbortController();
  await consume(ahead, n, perMessageMs, stop.signal);
  stop.abort();
  await ahead.close();
  return store.asks;
}

describe("postgres read-ahead sizing", () => {
  it("a consumer that outruns its refills holds more ahead, up to the cap", async () => {
    const asks = await asksOf(2, 3000, 0);
    assert.equal(asks[0], 1, "the first receive asks for what it needs");
    assert.equal(Math.max(...asks), 250, `asks grew to the cap: ${asks.slice(0, 12).join(", ")} ...`);
    assert.ok(asks.length < 60, `3,000 messages took ${asks.length} lease statements`);
  });

  it("a consumer slower than its refills keeps four times its ask", async () => {
    const asks = await asksOf(1, 40, 10);
    assert.ok(Math.max(...asks) <= 5, `asks stayed small: ${asks.join(", ")}`);
  });
});
