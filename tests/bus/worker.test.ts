import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import {
  Cancel,
  createEnvelope,
  createFerry,
  defineEvent,
  defineTask,
  FerryError,
  MemoryTransport,
  RetryLater,
  Snooze,
  Unrecoverable,
  type RunReport,
  type Transport,
} from "../../src/index.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function setup(tasks: Parameters<typeof createFerry>[0] = {}) {
  const transport = new MemoryTransport();
  const ferry = createFerry({ transport, ...tasks });
  const runs: RunReport[] = [];
  ferry.events.on("run", (r) => runs.push(r));
  return { transport, ferry, runs };
}

describe("worker", () => {
  it("runs a dispatched task and reports the run with seed 002's fields", async () => {
    const greet = defineTask("greet", { schema: z.object({ name: z.string() }), run: async ({ name }) => ({ hello: name }) });
    const { ferry, transport, runs } = setup({ tasks: [greet] });
    const receipt = await ferry.dispatch(greet, { name: "Ada" });
    assert.equal(receipt.channel, "default");
    const worker = ferry.worker({ concurrency: 2 });
    await worker.start();
    await until(() => runs.length === 1, "the run");
    const [r] = runs;
    assert.equal(r!.status, "completed");
    assert.equal(r!.id, receipt.id);
    assert.equal(r!.task, "greet");
    assert.equal(r!.channel, "default");
    assert.deepEqual(r!.params, { name: "Ada" });
    assert.deepEqual(r!.result, { hello: "Ada" });
    assert.equal(typeof r!.durationMs, "number");
    assert.match(r!.message, /completed/);
    const record = await transport.get(receipt.id);
    assert.equal(record?.state, "completed");
    assert.deepEqual(record?.result, { hello: "Ada" });
    await ferry.close();
  });

  it("keeps concurrency bounded", async () => {
    let running = 0;
    let peak = 0;
    const slow = defineTask("slow", {
      run: async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(20);
        running--;
      },
    });
    const { ferry, runs } = setup({ tasks: [slow] });
    await ferry.dispatchMany(slow, Array.from({ length: 20 }, (_, i) => ({ i })));
    const worker = ferry.worker({ concurrency: 3 });
    await worker.start();
    await until(() => runs.length === 20, "20 runs");
    assert.equal(peak, 3);
    await ferry.close();
  });

  it("stops taking work while its settle budget of finished runs (four per slot) wait for their ack", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let acks = 0;
    class SlowAcks extends MemoryTransport {
      override async ack(items: Parameters<MemoryTransport["ack"]>[0]) {
        acks++;
        await gate;
        return super.ack(items);
      }
    }
    let started = 0;
    const quick = defineTask("quick", { run: () => void started++ });
    const transport = new SlowAcks();
    const ferry = createFerry({ transport, tasks: [quick] });
    await ferry.dispatchMany(quick, Array.from({ length: 200 }, (_, i) => ({ i })));
    try {
      const worker = ferry.worker({ concurrency: 10 });
      await worker.start();
      await until(() => started >= 40 && acks > 0, "runs up to the settle budget");
      await sleep(200);
      // 10 slots: 40 finished runs waiting for their ack stop the fetching; what was fetched already may finish.
      assert.ok(started >= 40 && started <= 50, `${started} runs started while no ack was answered`);
      release();
      await until(async () => (await transport.counts()).find((c) => c.channel === "default")?.completed === 200, "all 200 acked");
      assert.equal(started, 200);
    } finally {
      release();
      await ferry.close();
    }
  });

  it("retries with backoff until it succeeds, keeping each error", async () => {
    let calls = 0;
    const flaky = defineTask("flaky", {
      retry: { attempts: 4, delay: "10ms", jitter: 0 },
      run: async () => {
        calls++;
        if (calls < 3) throw new Error(`failure ${calls}`);
        return "ok";
      },
    });
    const { ferry, transport, runs } = setup({ tasks: [flaky] });
    const { id } = await ferry.dispatch(flaky, {});
    await ferry.worker().start();
    await until(() => runs.some((r) => r.status === "completed"), "success");
    assert.deepEqual(runs.map((r) => [r.status, r.attempt]), [["retrying", 1], ["retrying", 2], ["completed", 3]]);
    assert.ok(runs[1]!.nextRunAt! - runs[0]!.nextRunAt! > 0);
    const record = await transport.get(id);
    assert.deepEqual(record?.errors.map((e) => [e.attempt, e.code, e.message]), [[1, "HANDLER_FAILED", "failure 1"], [2, "HANDLER_FAILED", "failure 2"]]);
    await ferry.close();
  });

  it("dead-letters after exactly maxAttempts", async () => {
    let calls = 0;
    const poison = defineTask("poison", { retry: { attempts: 3, delay: 1, jitter: 0 }, run: () => { calls++; throw "a string, not an Error"; } });
    const { ferry, transport, runs } = setup({ tasks: [poison] });
    const { id } = await ferry.dispatch(poison, null);
    await ferry.worker().start();
    await until(() => runs.some((r) => r.status === "dead"), "dead-letter");
    assert.equal(calls, 3);
    const record = await transport.get(id);
    assert.equal(record?.state, "dead");
    assert.equal(record?.errors.length, 3);
    assert.match(record!.errors[0]!.message, /non-Error thrown: a string/);
    await ferry.close();
  });

  it("steers with RetryLater, Snooze, Cancel and Unrecoverable", async () => {
    const seen: Record<string, number[]> = {};
    const note = (k: string, attempt: number) => (seen[k] ??= []).push(attempt);
    const later = defineTask("steer.later", { retry: { attempts: 2 }, run: (_p, ctx) => { note("later", ctx.attempt); if (ctx.attempt === 1) throw new RetryLater(20); } });
    const snooze = defineTask("steer.snooze", { retry: { attempts: 1 }, run: (_p, ctx) => { note("snooze", ctx.attempt); if ((seen.snooze?.length ?? 0) < 3) throw new Snooze(5); } });
    const cancel = defineTask("steer.cancel", { run: () => { throw new Cancel("not needed"); } });
    const fatal = defineTask("steer.fatal", { retry: { attempts: 5 }, run: () => { throw new Unrecoverable("bad card"); } });
    const { ferry, transport, runs } = setup({ tasks: [later, snooze, cancel, fatal] });
    const ids = await Promise.all([later, snooze, cancel, fatal].map((t) => ferry.dispatch(t, {})));
    await ferry.worker().start();
    await until(() => runs.filter((r) => ["completed", "cancelled", "dead"].includes(r.status)).length === 4, "four outcomes");
    assert.deepEqual(seen.later, [1, 2]);
    assert.deepEqual(seen.snooze, [1, 1, 1], "a snooze uses no attempt");
    assert.equal((await transport.get(ids[1]!.id))?.state, "completed");
    assert.equal((await transport.get(ids[2]!.id))?.state, "cancelled");
    const dead = await transport.get(ids[3]!.id);
    assert.equal(dead?.state, "dead");
    assert.equal(dead?.errors[0]?.code, "UNRECOVERABLE");
    assert.equal(runs.filter((r) => r.task === "steer.fatal").length, 1, "no retry after Unrecoverable");
    await ferry.close();
  });

  it("aborts a handler at its timeout and counts the attempt as TIMEOUT", async () => {
    let sawAbort = false;
    const stuck = defineTask("stuck", {
      timeout: 50,
      retry: { attempts: 1 },
      run: (_p, ctx) => new Promise((resolve) => ctx.signal.addEventListener("abort", () => { sawAbort = true; resolve(undefined); })),
    });
    const { ferry, transport, runs } = setup({ tasks: [stuck] });
    const { id } = await ferry.dispatch(stuck, {});
    await ferry.worker().start();
    await until(() => runs.length === 1, "the run");
    assert.equal(runs[0]!.status, "dead");
    assert.equal(runs[0]!.error?.code, "TIMEOUT");
    assert.ok(sawAbort, "the handler's signal fired");
    assert.equal((await transport.get(id))?.errors[0]?.code, "TIMEOUT");
    await ferry.close();
  });

  it("dead-letters a message that fails its schema at receive, without retrying", async () => {
    const typed = defineTask("typed", { schema: z.object({ n: z.number() }), retry: { attempts: 5 }, run: () => "ran" });
    const { ferry, transport, runs } = setup({ tasks: [typed] });
    const bad = createEnvelope({ name: "typed", channel: "default", payload: { n: "not a number" } });
    await transport.send([bad]);
    await ferry.worker().start();
    await until(() => runs.length === 1, "the run");
    assert.equal(runs[0]!.status, "dead");
    assert.equal(runs[0]!.error?.code, "INVALID_PAYLOAD");
    assert.equal((await transport.get(bad.id))?.state, "dead");
    await ferry.close();
  });

  it("dead-letters a message no task handles", async () => {
    const known = defineTask("known", { run: () => undefined });
    const { ferry, transport, runs } = setup({ tasks: [known] });
    const stray = createEnvelope({ name: "unknown.task", channel: "default", payload: {} });
    await transport.send([stray]);
    await ferry.worker().start();
    await until(() => runs.length === 1, "the run");
    assert.equal(runs[0]!.error?.code, "NO_HANDLER");
    assert.equal((await transport.get(stray.id))?.state, "dead");
    await ferry.close();
  });

  it("refuses a completion after the lease was lost, and says so", async () => {
    const inner = new MemoryTransport();
    // Heartbeats that do nothing: the lease runs out while the handler works.
    const transport: Transport = {
      kind: "memory",
      send: (m) => inner.send(m),
      receive: (r) => inner.receive(r),
      ack: (i) => inner.ack(i),
      retry: (i) => inner.retry(i),
      deadLetter: (i) => inner.deadLetter(i),
      extend: async (items) => items.map(() => true),
      close: () => inner.close(),
    };
    const slow = defineTask("slow.lease", { run: async () => { await sleep(400); return "late"; } });
    const ferry = createFerry({ transport, tasks: [slow] });
    const runs: RunReport[] = [];
    const lost: string[] = [];
    ferry.events.on("run", (r) => runs.push(r));
    ferry.events.on("lease:lost", (e) => lost.push(e.id));
    const { id } = await ferry.dispatch(slow, {});
    await ferry.worker({ lease: 150, concurrency: 1 }).start();
    await sleep(250);
    const [stolen] = await inner.receive({ channels: ["default"], max: 1, leaseMs: 60_000, waitMs: 0 });
    assert.equal(stolen?.message.id, id, "another receiver took the expired lease");
    await until(() => runs.length === 1, "the late run");
    assert.equal(runs[0]!.status, "lease-lost");
    assert.deepEqual(lost, [id]);
    assert.equal((await inner.get(id))?.state, "active", "the stale completion changed nothing");
    await ferry.close();
  });

  it("drains on stop: aborts after the grace period and gives the message back unused", async () => {
    const hang = defineTask("hang", { run: () => new Promise(() => undefined) });
    const { ferry, transport } = setup({ tasks: [hang] });
    const { id } = await ferry.dispatch(hang, {});
    const worker = ferry.worker({ shutdownGrace: 50 });
    await worker.start();
    await until(async () => (await transport.get(id))?.state === "active", "the handler to start");
    await worker.stop();
    const record = await transport.get(id);
    assert.equal(record?.state, "waiting");
    assert.equal(record?.message.attempt, 0, "the interrupted attempt is not counted");
    assert.equal(worker.state, "stopped");
    await ferry.close();
  });

  it("waits for running handlers within the grace period", async () => {
    const quick = defineTask("quick", { run: async () => { await sleep(50); return 1; } });
    const { ferry, transport } = setup({ tasks: [quick] });
    const { id } = await ferry.dispatch(quick, {});
    const worker = ferry.worker({ shutdownGrace: 5000 });
    await worker.start();
    await until(async () => (await transport.get(id))?.state === "active", "the handler to start");
    await worker.stop();
    assert.equal((await transport.get(id))?.state, "completed");
    await ferry.close();
  });
});

describe("dispatch", () => {
  it("an explicit id makes a producer idempotent", async () => {
    const t = defineTask("idem", { run: () => undefined });
    const { ferry, transport } = setup({ tasks: [t] });
    const first = await ferry.dispatch(t, { n: 1 }, { id: "order-42-confirmation" });
    const again = await ferry.dispatch(t, { n: 1 }, { id: "order-42-confirmation" });
    assert.deepEqual([first.id, first.deduplicated, again.id, again.deduplicated], ["order-42-confirmation", false, "order-42-confirmation", true]);
    assert.equal((await transport.counts())[0]?.waiting, 1);
    await ferry.close();
  });
});

describe("events", () => {
  it("fans out to sync, async, delayed and pattern subscribers", async () => {
    const userRegistered = defineEvent("user.registered", z.object({ id: z.string(), email: z.string().email() }));
    const order: string[] = [];
    const audit = defineTask("audit.write", { run: (p: unknown) => { order.push("audit"); return p; } });
    const welcome = defineTask("email.welcome", { schema: z.object({ to: z.string() }), run: ({ to }) => { order.push(`welcome:${to}`); } });
    const crm = defineTask("crm.sync", { run: () => { order.push("crm"); } });
    const any = defineTask("audit.any", { run: () => { order.push("any"); } });
    const { ferry, transport, runs } = setup();
    ferry.on(userRegistered, audit);
    ferry.on(userRegistered, welcome, { channel: "emails", map: (p: { email: string }) => ({ to: p.email }) });
    ferry.on(userRegistered, crm, { channel: "integrations", delay: 150 });
    ferry.on("user.*", any, { channel: "audit" });
    const receipt = await ferry.publish(userRegistered, { id: "u1", email: "ada@example.com" });
    assert.deepEqual(receipt.ran, ["audit.write"]);
    assert.deepEqual(order, ["audit"], "the sync subscriber ran before publish returned");
    assert.deepEqual(receipt.messages.map((m) => [m.task, m.channel]).sort(), [["audit.any", "audit"], ["crm.sync", "integrations"], ["email.welcome", "emails"]]);
    const crmRecord = await transport.get(receipt.messages.find((m) => m.task === "crm.sync")!.id);
    assert.equal(crmRecord?.message.headers.causationId, receipt.id);
    assert.equal(crmRecord?.message.headers.correlationId, receipt.id);
    assert.ok(crmRecord!.message.runAt >= crmRecord!.message.createdAt + 150);
    await ferry.worker().start();
    await until(() => runs.filter((r) => !r.sync).length === 3, "three async runs");
    assert.deepEqual(order.slice(1).sort(), ["any", "crm", "welcome:ada@example.com"]);
    assert.equal(order.at(-1), "crm", "the delayed task ran last");
    await ferry.close();
  });

  it("a failing sync subscriber rejects the publish and enqueues nothing", async () => {
    const ev = defineEvent("thing.happened");
    const boom = defineTask("boom", { run: () => { throw new Error("sync broke"); } });
    const later = defineTask("later", { run: () => undefined });
    const { ferry, transport } = setup();
    ferry.on(ev, boom).on(ev, later, { channel: "c" });
    await assert.rejects(ferry.publish(ev, {}), (e: unknown) => e instanceof FerryError && e.code === "HANDLER_FAILED" && /sync broke/.test(e.message));
    assert.deepEqual(await transport.counts(), []);
    await ferry.close();
  });

  it("routes published names through # and * patterns", async () => {
    const hits: string[] = [];
    const t1 = defineTask("paid.any", { run: () => { hits.push("star"); } });
    const t2 = defineTask("order.all", { run: () => { hits.push("hash"); } });
    const { ferry } = setup();
    ferry.on("order.*.paid", t1).on("order.#", t2);
    await ferry.publish("order.eu.paid", {});
    await ferry.publish("order.eu.de.paid", {});
    await ferry.publish("order", {});
    assert.deepEqual(hits, ["star", "hash", "hash", "hash"]);
    await ferry.close();
  });
});
