import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import { createFerry, defineTask, FerryError, MemoryTransport, Unrecoverable } from "../../src/index.ts";

const isCode = (code: string) => (e: unknown) => e instanceof FerryError && e.code === code;

describe("request/reply", () => {
  it("resolves with the handler's typed result, each caller its own", async () => {
    const price = defineTask("order.price", { schema: z.object({ qty: z.number() }), run: async ({ qty }) => ({ total: qty * 3 }) });
    const ferry = createFerry({ transport: new MemoryTransport(), tasks: [price] });
    await ferry.worker({ concurrency: 20 }).start();
    const quotes = await Promise.all(Array.from({ length: 200 }, (_, i) => ferry.request(price, { qty: i }, { timeout: "10s" })));
    assert.deepEqual(quotes.map((q) => q.total), Array.from({ length: 200 }, (_, i) => i * 3));
    const stats = await ferry.requestStats();
    assert.deepEqual([stats.pending, stats.lateReplies, stats.inboxes.length], [0, 0, 1]);
    await ferry.close();
  });

  it("rejects with HANDLER_FAILED when the task dead-letters", async () => {
    const fail = defineTask("always.fails", { run: () => { throw new Unrecoverable("nope"); } });
    const ferry = createFerry({ transport: new MemoryTransport(), tasks: [fail] });
    await ferry.worker().start();
    await assert.rejects(ferry.request(fail, {}), (e: unknown) => isCode("HANDLER_FAILED")(e) && /nope/.test((e as Error).message));
    await ferry.close();
  });

  it("times out, then drops and counts the late reply", async () => {
    const slow = defineTask("slow.reply", { run: async () => { await new Promise((r) => setTimeout(r, 150)); return 1; } });
    const ferry = createFerry({ transport: new MemoryTransport(), tasks: [slow] });
    await ferry.worker().start();
    await assert.rejects(ferry.request(slow, {}, { timeout: 30 }), isCode("REQUEST_TIMEOUT"));
    assert.equal((await ferry.requestStats()).pending, 0);
    for (let i = 0; i < 100 && (await ferry.requestStats()).lateReplies === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const stats = await ferry.requestStats();
    assert.deepEqual([stats.pending, stats.lateReplies], [0, 1]);
    await ferry.close();
  });

  it("rejects with ABORTED when the signal aborts, and on close", async () => {
    const never = defineTask("never.runs", { run: () => 1 });
    const ferry = createFerry({ transport: new MemoryTransport(), tasks: [never] });
    const ac = new AbortController();
    const pending = ferry.request(never, {}, { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await assert.rejects(pending, isCode("ABORTED"));
    const second = ferry.request(never, {});
    await new Promise((r) => setTimeout(r, 20));
    await ferry.close();
    await assert.rejects(second, isCode("ABORTED"));
  });
});
