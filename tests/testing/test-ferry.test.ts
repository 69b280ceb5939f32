import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import { Cancel, defineEvent, defineTask, FerryError, RetryLater, Snooze } from "../../src/index.ts";
import { createTestFerry, VirtualClock } from "../../src/testing/index.ts";

const START = Date.UTC(2030, 0, 1);

describe("ferry/testing: createTestFerry", () => {
  it("drain() runs what was dispatched and records dispatches and runs", async () => {
    const add = defineTask("math.add", { schema: z.object({ a: z.number(), b: z.number() }), run: ({ a, b }) => a + b });
    const ferry = createTestFerry({ tasks: [add], start: START });
    assert.ok(ferry.clock instanceof VirtualClock);
    const receipt = await ferry.dispatch(add, { a: 2, b: 3 });
    assert.equal(ferry.runs.length, 0, "nothing runs before drain");
    const runs = await ferry.drain();
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.status, "completed");
    assert.equal(runs[0]!.id, receipt.id);
    assert.equal(runs[0]!.result, 5);
    assert.deepEqual(ferry.dispatched(add).map((d) => d.payload), [{ a: 2, b: 3 }]);
    assert.deepEqual(ferry.dispatched("math.add").map((d) => d.id), [receipt.id]);
    assert.equal(ferry.dispatched("other.task").length, 0);
    assert.equal((await ferry.memory.get(receipt.id))?.state, "completed");
    assert.equal(ferry.clock.now(), START, "the clock did not move");
    await ferry.close();
    assert.equal(ferry.clock.pendingSleepers, 0, "nothing left sleeping");
  });

  it("records publishes; delayed subscriptions wait for advance", async () => {
    const seen: string[] = [];
    const orderCreated = defineEvent("order.created", z.object({ id: z.string() }));
    const audit = defineTask("audit.log", { run: (p: unknown) => void seen.push(`audit ${(p as { id: string }).id}`) });
    const closeUnpaid = defineTask("order.close-unpaid", { schema: z.object({ id: z.string() }), run: ({ id }) => void seen.push(`close ${id}`) });
    const ferry = createTestFerry({ start: START });
    ferry.on(orderCreated, audit); // sync
    ferry.on(orderCreated, closeUnpaid, { channel: "orders", delay: "10m" });
    const receipt = await ferry.publish(orderCreated, { id: "o-1" });

    const published = ferry.published(orderCreated);
    assert.equal(published.length, 1);
    assert.deepEqual(published[0]!.payload, { id: "o-1" });
    assert.deepEqual(published[0]!.messageIds, receipt.messages.map((m) => m.id));
    assert.deepEqual(ferry.published("order.paid"), []);
    assert.equal(ferry.dispatched(closeUnpaid)[0]!.runAt, START + 10 * 60_000);
    assert.deepEqual(seen, ["audit o-1"], "the sync subscriber ran in publish");

    assert.deepEqual(await ferry.drain(), [], "nothing is due yet");
    assert.deepEqual(seen, ["audit o-1"]);

    const runs = await ferry.drain({ advance: true });
    assert.deepEqual(runs.map((r) => [r.task, r.status]), [["order.close-unpaid", "completed"]]);
    assert.deepEqual(seen, ["audit o-1", "close o-1"]);
    assert.equal(ferry.clock.now(), START + 10 * 60_000, "the clock moved exactly to the due time");
    await ferry.close();
  });

  it("drain({ advance: true }) plays retries with backoff through to the end", async () => {
    let calls = 0;
    const flaky = defineTask("crm.sync", {
      retry: { attempts: 4, backoff: "fixed", delay: "1m", jitter: 0 },
      run: () => {
        calls++;
        if (calls < 3) throw new Error(`crm down (${calls})`);
        return "synced";
      },
    });
    const hopeless = defineTask("crm.hopeless", { retry: { attempts: 2, backoff: "fixed", delay: "30s", jitter: 0 }, run: () => { throw new Error("never"); } });
    const ferry = createTestFerry({ tasks: [flaky, hopeless], start: START });
    await ferry.dispatch(flaky, {});
    await ferry.dispatch(hopeless, {});
    const firstPass = await ferry.drain();
    assert.deepEqual(firstPass.map((r) => r.status).sort(), ["retrying", "retrying"]);
    const runs = await ferry.drain({ advance: true });
    const flakyRuns = [...firstPass, ...runs].filter((r) => r.task === "crm.sync");
    assert.deepEqual(flakyRuns.map((r) => `${r.status}@${r.attempt}`), ["retrying@1", "retrying@2", "completed@3"]);
    assert.deepEqual(flakyRuns.map((r) => r.startedAt - START), [0, 60_000, 120_000], "each retry ran when its backoff said");
    const hopelessRuns = ferry.runs.filter((r) => r.task === "crm.hopeless");
    assert.deepEqual(hopelessRuns.map((r) => r.status), ["retrying", "dead"]);
    assert.equal(hopelessRuns[1]!.error?.message, "never");
    await ferry.close();
  });

  it("drain() follows work dispatched by handlers, on new channels too", async () => {
    const second = defineTask("chain.second", { run: () => "second done" });
    const first = defineTask("chain.first", {
      run: async (_p: unknown, ctx) => {
        await ferry.dispatch(second, { from: ctx.id }, { channel: "elsewhere" });
        return "first done";
      },
    });
    const ferry = createTestFerry({ tasks: [first, second] });
    await ferry.dispatch(first, {});
    const runs = await ferry.drain();
    assert.deepEqual(runs.map((r) => `${r.channel} ${r.result}`).sort(), ["default first done", "elsewhere second done"]);
    await ferry.close();
  });

  it("drain() stops a task that reschedules itself forever", async () => {
    const forever = defineTask("loop.forever", { run: () => { throw new Snooze("1s"); } });
    const ferry = createTestFerry({ tasks: [forever] });
    await ferry.dispatch(forever, {});
    await assert.rejects(ferry.drain({ advance: true, maxRuns: 5 }), (err: unknown) => err instanceof FerryError && err.code === "TIMEOUT" && /reschedule itself forever/.test(err.message));
    await ferry.close();
  });

  it("request() resolves while drain() runs the worker", async () => {
    const price = defineTask("price.quote", { schema: z.object({ qty: z.number() }), run: ({ qty }) => ({ total: qty * 3 }) });
    const ferry = createTestFerry({ tasks: [price] });
    const quote = ferry.request(price, { qty: 4 }, { timeout: "5s" });
    const runs = await ferry.drain(); // waits for the request's message and its reply
    assert.deepEqual(runs.map((r) => r.task), ["price.quote"]);
    assert.deepEqual(await quote, { total: 12 });
    await ferry.close();
  });

  it("runTask() runs one handler with a fake context", async () => {
    const contexts: unknown[] = [];
    const welcome = defineTask("email.welcome", {
      schema: z.object({ email: z.string().email() }),
      channel: "emails",
      retry: { attempts: 5 },
      run: ({ email }, ctx) => {
        contexts.push({ attempt: ctx.attempt, maxAttempts: ctx.maxAttempts, channel: ctx.channel, task: ctx.task, sync: ctx.sync, aborted: ctx.signal.aborted });
        if (email.startsWith("later")) throw new RetryLater("1m");
        if (email.startsWith("cancel")) throw new Cancel("unsubscribed");
        return `sent to ${email}`;
      },
    });
    const ferry = createTestFerry();
    assert.equal(await ferry.runTask(welcome, { email: "ada@example.com" }), "sent to ada@example.com");
    assert.deepEqual(contexts[0], { attempt: 1, maxAttempts: 5, channel: "emails", task: "email.welcome", sync: false, aborted: false });
    await ferry.runTask(welcome, { email: "ada@example.com" }, { attempt: 3 });
    assert.equal((contexts[1] as { attempt: number }).attempt, 3);
    await assert.rejects(ferry.runTask(welcome, { email: "later@example.com" }), RetryLater);
    await assert.rejects(ferry.runTask(welcome, { email: "cancel@example.com" }), Cancel);
    await assert.rejects(ferry.runTask(welcome, { email: "not an address" }), (err: unknown) => err instanceof FerryError && err.code === "INVALID_PAYLOAD");
    assert.equal(ferry.runs.length, 0, "runTask does not go through the transport");
    await ferry.close();
  });

  it("runTask() applies the task's timeout through the signal", async () => {
    let aborted = false;
    const hang = defineTask("slow.hang", { timeout: 30, run: (_p: unknown, ctx) => new Promise((resolve) => ctx.signal.addEventListener("abort", () => { aborted = true; resolve(undefined); })) });
    const ferry = createTestFerry();
    await assert.rejects(ferry.runTask(hang, {}), (err: unknown) => err instanceof FerryError && err.code === "TIMEOUT");
    assert.ok(aborted);
    await ferry.close();
  });
});
