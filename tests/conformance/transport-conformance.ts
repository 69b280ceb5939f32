/**
 * The one suite every transport runs. A transport's test file calls
 * `runTransportConformance({ name, create })`; a transport that differs declares
 * the skip with its reason.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { createEnvelope, newId, type Envelope, type EnvelopeInit } from "../../src/core/envelope.ts";
import { isFerryError } from "../../src/core/errors.ts";
import { appendError, hasDeadLetterAdmin, isInspectable, isPausable, isPrunable, type AttemptError, type Delivery, type Transport } from "../../src/transport/types.ts";

/** A declared skip: which tests, and why. */
export interface ConformanceSkip {
  reason: string;
  tests: string[];
}

/** Options of {@link runTransportConformance}. */
export interface ConformanceOptions {
  name: string;
  /**
   * Open a transport. Calls with the same `store` key within one test must reach
   * the same stored queue (two clients of one server, two handles on one file).
   */
  create: (store: string) => Promise<Transport>;
  /** Called once after the suite, to drop what `create` made. */
  cleanup?: () => Promise<void>;
  skip?: ConformanceSkip[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let counter = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`;

function msg(channel: string, init: Partial<EnvelopeInit> = {}): Envelope {
  return createEnvelope({ name: "conformance.task", channel, payload: { n: counter++ }, ...init });
}

async function receiveAll(t: Transport, channels: string[], expected: number, waitMs = 3000): Promise<Delivery[]> {
  const got: Delivery[] = [];
  const deadline = Date.now() + waitMs;
  while (got.length < expected && Date.now() < deadline) {
    got.push(...(await t.receive({ channels, max: expected - got.length, leaseMs: 30_000, waitMs: Math.max(1, deadline - Date.now()) })));
  }
  return got;
}

/** Register the conformance suite for one transport. */
export function runTransportConformance(options: ConformanceOptions): void {
  const skipped = new Map<string, string>();
  for (const s of options.skip ?? []) for (const t of s.tests) skipped.set(t, s.reason);
  const open: Transport[] = [];

  async function transport(store = "main"): Promise<Transport> {
    const t = await options.create(store);
    open.push(t);
    return t;
  }

  const test = (title: string, fn: () => Promise<void>) => {
    const reason = skipped.get(title);
    if (reason) it(title, { skip: reason }, fn);
    else
      it(title, async () => {
        try {
          await fn();
        } finally {
          await Promise.all(open.splice(0).map((t) => t.close()));
        }
      });
  };

  describe(`transport conformance: ${options.name}`, () => {
    after(async () => {
      await options.cleanup?.();
    });

    test("send, receive and ack", async () => {
      const t = await transport();
      const ch = unique("basic");
      const sent = [msg(ch), msg(ch), msg(ch)];
      const receipts = await t.send(sent);
      assert.deepEqual(receipts, sent.map((m) => ({ id: m.id, deduplicated: false })));
      const got = await t.receive({ channels: [ch], max: 10, leaseMs: 30_000, waitMs: 0 });
      assert.equal(got.length, 3);
      assert.deepEqual(got.map((d) => d.message.id).sort(), sent.map((m) => m.id).sort());
      for (const d of got) {
        assert.equal(d.message.attempt, 1);
        assert.equal(typeof d.token, "string");
        assert.ok(d.token.length > 0);
        assert.ok(d.leaseExpiresAt > Date.now() + 20_000);
      }
      assert.deepEqual(await t.ack(got.map((d) => ({ id: d.message.id, token: d.token }))), [true, true, true]);
      assert.deepEqual(await t.receive({ channels: [ch], max: 10, leaseMs: 30_000, waitMs: 0 }), []);
    });

    test("a message round-trips unchanged", async () => {
      const t = await transport();
      const ch = unique("roundtrip");
      const payload = { text: "héllo \u0000 \"quoted\" 🚀 ' ; DROP TABLE x; --", nested: { list: [1, 2.5, null, true, { deep: ["x"] }] }, empty: {}, big: 2 ** 52 };
      const m = msg(ch, { payload, headers: { correlationId: "corr-1", causationId: "cause-1", custom: "v" }, priority: 7, maxAttempts: 9 });
      await t.send([m]);
      const [d] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 });
      assert.ok(d);
      assert.deepEqual(d.message.payload, payload);
      assert.deepEqual(d.message.headers, m.headers);
      assert.equal(d.message.name, m.name);
      assert.equal(d.message.channel, ch);
      assert.equal(d.message.priority, 7);
      assert.equal(d.message.maxAttempts, 9);
      assert.equal(d.message.createdAt, m.createdAt);
      assert.equal(d.message.v, 1);
      const nullPayload = msg(ch, { payload: null });
      await t.send([nullPayload]);
      const [d2] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 });
      assert.equal(d2?.message.payload, null);
    });

    test("receive honours max", async () => {
      const t = await transport();
      const ch = unique("max");
      await t.send(Array.from({ length: 5 }, () => msg(ch)));
      assert.equal((await t.receive({ channels: [ch], max: 2, leaseMs: 30_000, waitMs: 0 })).length, 2);
      assert.equal((await t.receive({ channels: [ch], max: 10, leaseMs: 30_000, waitMs: 0 })).length, 3);
    });

    test("first in, first out among equal priority", async () => {
      const t = await transport();
      const ch = unique("fifo");
      const now = Date.now();
      const sent = Array.from({ length: 20 }, (_, i) => msg(ch, { runAt: now - 1000 + i }));
      await t.send(sent);
      const got: string[] = [];
      for (let i = 0; i < 20; i++) {
        const [d] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 });
        assert.ok(d);
        got.push(d.message.id);
      }
      assert.deepEqual(got, sent.map((m) => m.id));
    });

    test("higher priority first", async () => {
      const t = await transport();
      const ch = unique("prio");
      const low = msg(ch, { priority: -5 });
      const mid = msg(ch, { priority: 0 });
      const high = msg(ch, { priority: 10 });
      await t.send([low, mid, high]);
      const order: string[] = [];
      for (let i = 0; i < 3; i++) {
        const [d] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 });
        order.push(d!.message.id);
      }
      assert.deepEqual(order, [high.id, mid.id, low.id]);
    });

    test("several channels in one receive", async () => {
      const t = await transport();
      const a = unique("multi-a");
      const b = unique("multi-b");
      const c = unique("multi-c");
      await t.send([msg(a), msg(b), msg(c)]);
      const got = await receiveAll(t, [a, b], 2, 1000);
      assert.deepEqual(got.map((d) => d.message.channel).sort(), [a, b].sort());
      assert.deepEqual(await t.receive({ channels: [a, b], max: 10, leaseMs: 30_000, waitMs: 0 }), []);
      assert.equal((await t.receive({ channels: [c], max: 10, leaseMs: 30_000, waitMs: 0 })).length, 1);
    });

    test("bulk send of 1,000 keeps order of receipts", async () => {
      const t = await transport();
      const ch = unique("bulk");
      const sent = Array.from({ length: 1000 }, () => msg(ch));
      const receipts = await t.send(sent);
      assert.deepEqual(receipts.map((r) => r.id), sent.map((m) => m.id));
      const got = await receiveAll(t, [ch], 1000);
      assert.equal(new Set(got.map((d) => d.message.id)).size, 1000);
    });

    test("a delayed message is not delivered early", async () => {
      const t = await transport();
      const ch = unique("delay");
      const runAt = Date.now() + 400;
      const m = msg(ch, { runAt });
      await t.send([m]);
      assert.deepEqual(await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 }), []);
      const [d] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 5000 });
      assert.ok(d, "the delayed message arrives within the wait");
      assert.ok(Date.now() >= runAt - 2, `delivered ${runAt - Date.now()} ms early`);
      assert.equal(d.message.id, m.id);
    });

    test("a waiting receive wakes when work is sent", async () => {
      const t = await transport("shared");
      const sender = await transport("shared");
      const ch = unique("wake");
      const started = Date.now();
      const pending = t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 8000 });
      await sleep(100);
      await sender.send([msg(ch)]);
      const got = await pending;
      assert.equal(got.length, 1);
      assert.ok(Date.now() - started < 6000, "the receive returned with the work, not at the end of its wait");
    });

    test("an abort ends a waiting receive", async () => {
      const t = await transport();
      const ch = unique("abort");
      const ac = new AbortController();
      const pending = t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 20_000, signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      assert.deepEqual(await pending, []);
    });

    test("dedupKey holds while the message is live", async () => {
      const t = await transport();
      const ch = unique("dedup");
      const key = unique("key");
      const first = msg(ch, { dedupKey: key });
      const second = msg(ch, { dedupKey: key });
      const [r1] = await t.send([first]);
      const [r2] = await t.send([second]);
      assert.deepEqual(r1, { id: first.id, deduplicated: false });
      assert.deepEqual(r2, { id: first.id, deduplicated: true });
      const got = await t.receive({ channels: [ch], max: 10, leaseMs: 30_000, waitMs: 0 });
      assert.equal(got.length, 1);
      const [r3] = await t.send([msg(ch, { dedupKey: key })]);
      assert.equal(r3?.deduplicated, true, "an active message still holds its key");
      await t.ack([{ id: got[0]!.message.id, token: got[0]!.token }]);
      const third = msg(ch, { dedupKey: key });
      const [r4] = await t.send([third]);
      assert.deepEqual(r4, { id: third.id, deduplicated: false }, "a completed message frees its key");
    });

    test("sending the same id twice stores it once", async () => {
      const t = await transport();
      const ch = unique("sameid");
      const m = msg(ch);
      await t.send([m]);
      const [r] = await t.send([m]);
      assert.deepEqual(r, { id: m.id, deduplicated: true });
      assert.equal((await t.receive({ channels: [ch], max: 10, leaseMs: 30_000, waitMs: 0 })).length, 1);
    });

    test("retry at a time counts the attempt and keeps the error", async () => {
      const t = await transport();
      const ch = unique("retry");
      const m = msg(ch);
      await t.send([m]);
      const [d1] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 });
      const runAt = Date.now() + 300;
      const error = { at: Date.now(), attempt: 1, code: "HANDLER_FAILED", message: "boom" };
      assert.deepEqual(await t.retry([{ id: m.id, token: d1!.token, runAt, attemptUsed: true, error }]), [true]);
      assert.deepEqual(await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 }), []);
      const [d2] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 5000 });
      assert.ok(d2);
      assert.ok(Date.now() >= runAt - 2);
      assert.equal(d2.message.attempt, 2);
      assert.notEqual(d2.token, d1!.token);
      if (isInspectable(t)) {
        const rec = await t.get(m.id);
        assert.equal(rec?.state, "active");
        assert.deepEqual(rec?.errors, [error]);
      }
    });

    test("a snooze uses no attempt", async () => {
      const t = await transport();
      const ch = unique("snooze");
      const m = msg(ch);
      await t.send([m]);
      const [d1] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 });
      assert.deepEqual(await t.retry([{ id: m.id, token: d1!.token, runAt: Date.now() + 50, attemptUsed: false }]), [true]);
      const [d2] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 3000 });
      assert.equal(d2?.message.attempt, 1);
    });

    test("an expired lease is delivered again with a new token, and the old token is fenced", async () => {
      const t = await transport();
      const ch = unique("lease");
      const m = msg(ch);
      await t.send([m]);
      const [d1] = await t.receive({ channels: [ch], max: 1, leaseMs: 300, waitMs: 0 });
      assert.ok(d1);
      assert.deepEqual(await t.receive({ channels: [ch], max: 1, leaseMs: 300, waitMs: 0 }), [], "a live lease is not delivered twice");
      const [d2] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 5000 });
      assert.ok(d2, "the stalled delivery is recovered");
      assert.equal(d2.message.id, m.id);
      assert.equal(d2.message.attempt, 2);
      assert.notEqual(d2.token, d1.token);
      const stale = { id: m.id, token: d1.token };
      assert.deepEqual(await t.ack([stale]), [false], "a stale ack is refused");
      assert.deepEqual(await t.retry([{ ...stale, runAt: Date.now(), attemptUsed: true }]), [false]);
      assert.deepEqual(await t.deadLetter([{ ...stale, error: { at: Date.now(), attempt: 1, code: "X", message: "x" } }]), [false]);
      assert.deepEqual(await t.extend([stale], 10_000), [false]);
      assert.deepEqual(await t.ack([{ id: m.id, token: d2.token }]), [true]);
      assert.deepEqual(await t.ack([{ id: m.id, token: d2.token }]), [false], "a second ack is refused");
    });

    test("extend keeps a lease alive", async () => {
      const t = await transport();
      const ch = unique("extend");
      await t.send([msg(ch)]);
      const [d] = await t.receive({ channels: [ch], max: 1, leaseMs: 400, waitMs: 0 });
      await sleep(200);
      assert.deepEqual(await t.extend([{ id: d!.message.id, token: d!.token }], 5000), [true]);
      await sleep(400);
      assert.deepEqual(await t.receive({ channels: [ch], max: 1, leaseMs: 400, waitMs: 0 }), []);
      assert.deepEqual(await t.ack([{ id: d!.message.id, token: d!.token }]), [true]);
    });

    test("an unknown id or token is refused", async () => {
      const t = await transport();
      const ref = { id: newId(), token: "nope" };
      assert.deepEqual(await t.ack([ref]), [false]);
      assert.deepEqual(await t.extend([ref], 1000), [false]);
    });

    test("dead-letter, list, replay and discard", async () => {
      const t = await transport();
      const ch = unique("dead");
      const a = msg(ch);
      const b = msg(ch);
      await t.send([a, b]);
      const got = await t.receive({ channels: [ch], max: 2, leaseMs: 30_000, waitMs: 0 });
      const error = { at: Date.now(), attempt: 1, code: "UNRECOVERABLE", message: "bad" };
      assert.deepEqual(await t.deadLetter(got.map((d) => ({ id: d.message.id, token: d.token, error }))), [true, true]);
      assert.deepEqual(await t.receive({ channels: [ch], max: 2, leaseMs: 30_000, waitMs: 0 }), []);
      if (isInspectable(t)) {
        const dead = await t.list({ state: "dead", channel: ch });
        assert.deepEqual(dead.map((r) => r.message.id).sort(), [a.id, b.id].sort());
        assert.deepEqual(dead[0]!.errors, [error]);
        const counts = (await t.counts()).find((c) => c.channel === ch);
        assert.equal(counts?.dead, 2);
      }
      if (hasDeadLetterAdmin(t)) {
        assert.deepEqual(await t.replay([a.id, newId()]), [a.id]);
        const [again] = await t.receive({ channels: [ch], max: 2, leaseMs: 30_000, waitMs: 1000 });
        assert.equal(again?.message.id, a.id);
        assert.equal(again?.message.attempt, 1, "a replayed message starts its attempts again");
        assert.deepEqual(await t.discard([b.id]), [b.id]);
        assert.deepEqual(await t.discard([b.id]), []);
        if (isInspectable(t)) assert.equal(await t.get(b.id), null);
      }
    });

    test("results and cancellation are recorded", async () => {
      const t = await transport();
      if (!isInspectable(t)) return;
      const ch = unique("result");
      const a = msg(ch);
      const b = msg(ch);
      await t.send([a, b]);
      const got = await t.receive({ channels: [ch], max: 2, leaseMs: 30_000, waitMs: 0 });
      const byId = new Map(got.map((d) => [d.message.id, d]));
      await t.ack([
        { id: a.id, token: byId.get(a.id)!.token, result: { sent: true, to: ["x@y"] } },
        { id: b.id, token: byId.get(b.id)!.token, status: "cancelled" },
      ]);
      const ra = await t.get(a.id);
      assert.equal(ra?.state, "completed");
      assert.deepEqual(ra?.result, { sent: true, to: ["x@y"] });
      assert.ok(ra?.finishedAt);
      assert.equal((await t.get(b.id))?.state, "cancelled");
      const counts = (await t.counts()).find((c) => c.channel === ch);
      assert.equal(counts?.completed, 1);
      assert.equal(counts?.cancelled, 1);
    });

    test("counts by state", async () => {
      const t = await transport();
      if (!isInspectable(t)) return;
      const ch = unique("counts");
      await t.send([msg(ch), msg(ch), msg(ch, { runAt: Date.now() + 60_000 })]);
      await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 });
      const c = (await t.counts()).find((x) => x.channel === ch);
      assert.deepEqual(c, { channel: ch, waiting: 2, delayed: 1, active: 1, completed: 0, cancelled: 0, dead: 0 });
      const waiting = await t.list({ state: "waiting", channel: ch });
      assert.equal(waiting.length, 2);
    });

    test("concurrent receivers never share a message", async () => {
      const a = await transport("shared");
      const b = await transport("shared");
      const ch = unique("concurrent");
      const n = 300;
      await a.send(Array.from({ length: n }, () => msg(ch)));
      const seen = new Map<string, number>();
      const drain = async (t: Transport) => {
        for (;;) {
          const got = await t.receive({ channels: [ch], max: 7, leaseMs: 30_000, waitMs: 0 });
          if (got.length === 0) return;
          for (const d of got) seen.set(d.message.id, (seen.get(d.message.id) ?? 0) + 1);
          await t.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
        }
      };
      await Promise.all([drain(a), drain(b), drain(a), drain(b)]);
      assert.equal(seen.size, n);
      assert.deepEqual([...new Set(seen.values())], [1]);
    });

    test("an expired lease no one took again still accepts its ack", async () => {
      const t = await transport();
      const ch = unique("late-ack");
      await t.send([msg(ch)]);
      const [d] = await t.receive({ channels: [ch], max: 1, leaseMs: 100, waitMs: 0 });
      await sleep(250);
      assert.deepEqual(await t.ack([{ id: d!.message.id, token: d!.token }]), [true]);
      assert.deepEqual(await t.receive({ channels: [ch], max: 1, leaseMs: 100, waitMs: 0 }), []);
    });

    test("a delayed high-priority message does not hold back due ones", async () => {
      const t = await transport();
      const ch = unique("prio-delay");
      const later = msg(ch, { priority: 100, runAt: Date.now() + 60_000 });
      const now = msg(ch, { priority: 0 });
      await t.send([later, now]);
      const got = await t.receive({ channels: [ch], max: 5, leaseMs: 30_000, waitMs: 0 });
      assert.deepEqual(got.map((d) => d.message.id), [now.id]);
    });

    test("priority holds across channels in one receive", async () => {
      const t = await transport();
      const a = unique("xprio-a");
      const b = unique("xprio-b");
      const low = msg(a, { priority: 1 });
      const high = msg(b, { priority: 9 });
      await t.send([low, high]);
      const [first] = await t.receive({ channels: [a, b], max: 1, leaseMs: 30_000, waitMs: 0 });
      assert.equal(first?.message.id, high.id);
    });

    test("a null result is recorded as null", async () => {
      const t = await transport();
      if (!isInspectable(t)) return;
      const ch = unique("null-result");
      const m = msg(ch);
      await t.send([m]);
      const [d] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 });
      await t.ack([{ id: m.id, token: d!.token, result: null }]);
      const rec = await t.get(m.id);
      assert.equal(rec?.state, "completed");
      assert.equal(rec?.result, null);
    });

    test("the error history is capped, keeping the first and the newest", async () => {
      const t = await transport();
      if (!isInspectable(t)) return;
      const ch = unique("history");
      const m = msg(ch, { maxAttempts: 50 });
      await t.send([m]);
      let expected: AttemptError[] = [];
      for (let i = 1; i <= 14; i++) {
        const [d] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 2000 });
        const error = { at: Date.now(), attempt: i, code: "HANDLER_FAILED", message: `failure ${i}` };
        expected = appendError(expected, error);
        assert.deepEqual(await t.retry([{ id: m.id, token: d!.token, runAt: Date.now(), attemptUsed: true, error }]), [true]);
      }
      assert.deepEqual((await t.get(m.id))?.errors, expected);
    });

    test("replaying a dead message whose dedupKey a live one holds", async () => {
      const t = await transport();
      if (!hasDeadLetterAdmin(t)) return;
      const ch = unique("dedup-replay");
      const key = unique("k");
      const first = msg(ch, { dedupKey: key });
      await t.send([first]);
      const [d] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 });
      await t.deadLetter([{ id: first.id, token: d!.token, error: { at: Date.now(), attempt: 1, code: "X", message: "x" } }]);
      const second = msg(ch, { dedupKey: key });
      assert.deepEqual(await t.send([second]), [{ id: second.id, deduplicated: false }], "a dead message frees its key");
      assert.deepEqual(await t.replay([first.id]), [first.id]);
      const got = await receiveAll(t, [ch], 2, 2000);
      assert.deepEqual(got.map((x) => x.message.id).sort(), [first.id, second.id].sort());
    });

    test("pause and resume a channel", async () => {
      const t = await transport();
      if (!isPausable(t)) return;
      const ch = unique("pause");
      await t.pause(ch);
      assert.ok((await t.paused()).includes(ch));
      await t.send([msg(ch)]);
      assert.deepEqual(await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 300 }), [], "a paused channel delivers nothing");
      const pending = t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 8000 });
      await sleep(50);
      await t.resume(ch);
      assert.equal((await pending).length, 1, "resume wakes a waiting receive");
      assert.ok(!(await t.paused()).includes(ch));
    });

    test("prune removes only finished messages before the cutoff", async () => {
      const t = await transport();
      if (!isPrunable(t) || !isInspectable(t)) return;
      const ch = unique("prune");
      const done = msg(ch);
      const waiting = msg(ch, { runAt: Date.now() + 60_000 });
      const active = msg(ch);
      await t.send([done]);
      const [d] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 });
      await t.ack([{ id: done.id, token: d!.token }]);
      await t.send([waiting, active]);
      await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 });
      await sleep(20);
      assert.ok((await t.prune({ before: Date.now() + 1000 })) >= 1);
      assert.equal(await t.get(done.id), null);
      assert.equal((await t.get(waiting.id))?.state, "waiting");
      assert.equal((await t.get(active.id))?.state, "active");
    });

    test("close is idempotent and later calls fail clearly", async () => {
      const t = await options.create("main");
      const ch = unique("close");
      const pending = t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 20_000 });
      await sleep(50);
      await t.close();
      await t.close();
      const got = await pending.catch((err: unknown) => err);
      assert.ok(Array.isArray(got) ? got.length === 0 : isFerryError(got, "TRANSPORT_CLOSED"), "a pending receive ends when the transport closes");
      await assert.rejects(t.send([msg(ch)]), (err: unknown) => isFerryError(err, "TRANSPORT_CLOSED"));
    });
  });
}
