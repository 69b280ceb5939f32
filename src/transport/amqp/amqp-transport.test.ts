import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import amqp from "amqplib";
import { createEnvelope } from "../../core/envelope.ts";
import { isFerryError } from "../../core/errors.ts";
import { SERVERS, serverSkipReason } from "../../../tests/support/servers.ts";
import { runTransportConformance } from "../../../tests/conformance/transport-conformance.ts";
import { REPLY_CHANNEL_PREFIX } from "../../core/names.ts";
import { optionsFromUrl } from "./amqp-options.ts";
import { queueArguments, REPLY_QUEUE_EXPIRES_MS } from "./topology.ts";
import { AmqpTransport, type AmqpTransportOptions } from "./amqp-transport.ts";

const skipReason = await serverSkipReason("amqp");
const runId = `ferry-test-${process.pid}-${Date.now().toString(36)}`;
const runStore = join(tmpdir(), `${runId}.db`);
const declared = new Set<string>();
const quiet = () => {};

/** Open a transport under this run's prefix, remembering what it declares so cleanup can delete it. */
async function open(extra: Partial<AmqpTransportOptions> = {}, prefix = runId): Promise<AmqpTransport> {
  const t = await AmqpTransport.connect({ ...optionsFromUrl(new URL(SERVERS.amqp)), prefix, runStore, logger: quiet, ...extra });
  const close = t.close.bind(t);
  t.close = async () => {
    for (const n of t.declaredNames()) declared.add(n);
    await close();
  };
  return t;
}

/** Delete only the queues and exchanges this run declared. */
async function cleanup(): Promise<void> {
  if (declared.size === 0) return;
  const conn = await amqp.connect(SERVERS.amqp);
  const ch = await conn.createChannel();
  for (const name of declared) {
    await ch.deleteQueue(name);
    if (name.includes("::delay:")) await ch.deleteExchange(name);
  }
  declared.clear();
  await conn.close();
  for (const suffix of ["", "-wal", "-shm"]) rmSync(runStore + suffix, { force: true });
}

describe("amqp transport URL", () => {
  it("reads the run store's retention and keeps it out of the broker URL", () => {
    const o = optionsFromUrl(new URL("amqp://guest:guest@127.0.0.1:5672/?prefix=app&completedCount=50&deadAge=7d&frameMax=8192"));
    assert.deepEqual(o.retention, { completed: { count: 50 }, dead: { age: "7d" } });
    assert.equal(o.url, "amqp://guest:guest@127.0.0.1:5672/?frameMax=8192&heartbeat=10");
    assert.throws(() => optionsFromUrl(new URL("amqp://127.0.0.1/?completedCount=some")), (err: unknown) => isFerryError(err, "INVALID_URL"));
  });
});

if (skipReason) {
  describe("amqp transport", () => it("needs RabbitMQ", { skip: skipReason }, () => {}));
} else {
  runTransportConformance({
    name: "amqp",
    create: () => open(),
    cleanup,
    skip: [
      {
        reason: "quorum queues (the default) on RabbitMQ 3.10 have no message priority, and 4.x has only two levels; priority is honoured only with ?queueType=classic (10 levels, see amqpPriority)",
        tests: ["higher priority first"],
      },
    ],
  });

  describe("amqp transport: recovery", () => {
    after(cleanup);

    it("comes back after its connection is cut, and unacked deliveries come back", async () => {
      const logged: string[] = [];
      const t = await open({ logger: (m) => logged.push(m) });
      try {
        const ch = `recover-${Date.now().toString(36)}`;
        const m = createEnvelope({ name: "recover.task", channel: ch, payload: { n: 1 } });
        await t.send([m]);
        const [d1] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 2000 });
        assert.equal(d1?.message.id, m.id);
        const generation = t.link!.generation;
        (t.link!.model.connection as unknown as { stream: { destroy(): void } }).stream.destroy();
        const [d2] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 10_000 });
        assert.ok(d2, "the unacked delivery came back after reconnecting");
        assert.equal(d2.message.id, m.id);
        assert.equal(d2.message.attempt, 2, "the interrupted delivery counts as an attempt");
        assert.ok(t.link!.generation > generation);
        assert.deepEqual(await t.ack([{ id: m.id, token: d1!.token }]), [false], "a lease from before the reconnection is fenced");
        assert.deepEqual(await t.ack([{ id: m.id, token: d2.token }]), [true]);
        assert.ok(logged.some((l) => l.includes("lost the RabbitMQ")), "the loss was logged");
        assert.ok(logged.some((l) => l.includes("reconnected")), "the recovery was logged");
        const sent = createEnvelope({ name: "recover.task", channel: ch, payload: { n: 2 } });
        await t.send([sent]);
        const [d3] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 2000 });
        assert.equal(d3?.message.id, sent.id, "sending and receiving work on the new connection");
        await t.ack([{ id: sent.id, token: d3!.token }]);
      } finally {
        await t.close();
      }
    });

    it("a lease that runs out is returned and counted without a run store", async () => {
      const t = await open({ runStore: false });
      try {
        assert.equal(t.get, undefined, "without a run store the transport does not claim to be inspectable");
        const ch = `nostore-${Date.now().toString(36)}`;
        const m = createEnvelope({ name: "nostore.task", channel: ch, payload: null });
        await t.send([m]);
        const [d1] = await t.receive({ channels: [ch], max: 1, leaseMs: 200, waitMs: 2000 });
        assert.equal(d1?.message.attempt, 1);
        const [d2] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 5000 });
        assert.equal(d2?.message.id, m.id);
        assert.equal(d2?.message.attempt, 2, "x-delivery-count counts the expired lease");
        assert.deepEqual(await t.retry([{ id: m.id, token: d2!.token, runAt: Date.now() + 100, attemptUsed: true }]), [true]);
        const [d3] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 5000 });
        assert.equal(d3?.message.attempt, 3, "a retried copy carries its attempts in a header");
        assert.deepEqual(await t.ack([{ id: m.id, token: d3!.token }]), [true]);
      } finally {
        await t.close();
      }
    });

    it("the run store's retention runs in the background once messages finish", async () => {
      const t = await open({ retention: { completed: { count: 2 } } });
      try {
        const ch = `retain-${Date.now().toString(36)}`;
        const sent = Array.from({ length: 5 }, (_, i) => createEnvelope({ name: "retain.task", channel: ch, payload: { i } }));
        for (const m of sent) await t.send([m]);
        const got: Awaited<ReturnType<typeof t.receive>> = [];
        while (got.length < 5) got.push(...(await t.receive({ channels: [ch], max: 5 - got.length, leaseMs: 30_000, waitMs: 2000 })));
        assert.ok((await t.ack(got.map((d) => ({ id: d.message.id, token: d.token })))).every(Boolean));
        const completed = async () => (await t.list!({ state: "completed", channel: ch, limit: 10 })).map((r) => r.message.id).sort();
        const deadline = Date.now() + 15_000;
        while ((await completed()).length !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(await completed(), sent.slice(3).map((m) => m.id).sort(), "the newest 2 by arrival");
      } finally {
        await t.close();
      }
    });

    it("acks written just before close reach the broker (nothing acked comes back)", async () => {
      const ch = `close-acks-${Date.now().toString(36)}`;
      const first = await open({ runStore: false });
      const sent = Array.from({ length: 20 }, (_, n) => createEnvelope({ name: "close.task", channel: ch, payload: { n } }));
      await first.send(sent);
      const got: Awaited<ReturnType<AmqpTransport["receive"]>> = [];
      while (got.length < sent.length) got.push(...(await first.receive({ channels: [ch], max: 20, leaseMs: 30_000, waitMs: 2000 })));
      assert.deepEqual(await first.ack(got.map((d) => ({ id: d.message.id, token: d.token }))), got.map(() => true));
      await first.close();
      const second = await open({ runStore: false });
      try {
        assert.deepEqual(await second.receive({ channels: [ch], max: 20, leaseMs: 30_000, waitMs: 500 }), []);
      } finally {
        await second.close();
      }
    });

    it("a lapsed lease no one here takes goes back to the broker for other consumers, its attempt counted", async () => {
      const ch = `lapse-${Date.now().toString(36)}`;
      const a = await open({ runStore: false });
      const b = await open({ runStore: false });
      try {
        const m = createEnvelope({ name: "lapse.task", channel: ch, payload: null });
        await a.send([m]);
        const [d1] = await a.receive({ channels: [ch], max: 1, leaseMs: 100, waitMs: 2000 });
        assert.equal(d1?.message.attempt, 1);
        const [d2] = await b.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 5000 });
        assert.equal(d2?.message.id, m.id, "another consumer gets it once the first let it go");
        assert.equal(d2?.message.attempt, 2);
        assert.deepEqual(await a.ack([{ id: m.id, token: d1!.token }]), [false], "the first lease is void once the message went back");
        assert.deepEqual(await b.ack([{ id: m.id, token: d2!.token }]), [true]);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it("many calls waiting on one connection add one abort listener to it, not one each", async () => {
      const t = await open({ runStore: false });
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
      process.on("warning", onWarning);
      try {
        const ch = `listeners-${Date.now().toString(36)}`;
        await Promise.all(Array.from({ length: 50 }, (_, n) => t.send([createEnvelope({ name: "l.task", channel: ch, payload: { n } })])));
        await new Promise((r) => setImmediate(r)); // warnings are emitted on a later tick
        assert.deepEqual(warnings.filter((w) => w.startsWith("MaxListenersExceededWarning")), []);
      } finally {
        process.off("warning", onWarning);
        await t.close();
      }
    });

    it("copies held until due raise the prefetch, so messages due now are not stuck behind them", async () => {
      const t = await open({ runStore: false });
      try {
        const ch = `credit-${Date.now().toString(36)}`;
        const later = Array.from({ length: 40 }, (_, n) => createEnvelope({ name: "c.task", channel: ch, payload: { n }, runAt: Date.now() + 900 }));
        await t.send(later);
        const now = Array.from({ length: 5 }, (_, n) => createEnvelope({ name: "c.task", channel: ch, payload: { n } }));
        await t.send(now);
        // max 5 asks for a prefetch of 8: the 40 copies ahead of the due ones are held in memory until due
        const got: Awaited<ReturnType<AmqpTransport["receive"]>> = [];
        while (got.length < now.length) {
          const batch = await t.receive({ channels: [ch], max: now.length - got.length, leaseMs: 30_000, waitMs: 5000 });
          assert.ok(batch.length > 0);
          got.push(...batch);
        }
        assert.deepEqual(got.map((d) => d.message.id).sort(), now.map((m) => m.id).sort(), "the due messages come first");
        await t.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
        const rest: string[] = [];
        while (rest.length < later.length) {
          const batch = await t.receive({ channels: [ch], max: 50, leaseMs: 30_000, waitMs: 5000 });
          assert.ok(batch.length > 0);
          for (const d of batch) assert.ok(Date.now() >= d.message.runAt, "never before its due time");
          rest.push(...batch.map((d) => d.message.id));
          await t.ack(batch.map((d) => ({ id: d.message.id, token: d.token })));
        }
        assert.deepEqual(rest.sort(), later.map((m) => m.id).sort());
      } finally {
        await t.close();
      }
    });

    it("deliveries buffered but not leased at close go back without counting an attempt", async () => {
      const ch = `close-unleased-${Date.now().toString(36)}`;
      const a = await open({ runStore: false });
      const b = await open({ runStore: false });
      try {
        assert.deepEqual(await a.receive({ channels: [ch], max: 4, leaseMs: 30_000, waitMs: 0 }), [], "starts a consumer with room for 4");
        const sent = Array.from({ length: 3 }, (_, n) => createEnvelope({ name: "u.task", channel: ch, payload: { n } }));
        const later = createEnvelope({ name: "u.task", channel: ch, payload: "later", runAt: Date.now() + 800 });
        await a.send([...sent, later]);
        const [leased] = await a.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 0 });
        assert.equal(leased?.message.attempt, 1);
        assert.deepEqual(await a.ack([{ id: leased!.message.id, token: leased!.token }]), [true]);
        await a.close(); // two due deliveries buffered here, one held until due
        const got: Awaited<ReturnType<AmqpTransport["receive"]>> = [];
        while (got.length < 3) {
          const batch = await b.receive({ channels: [ch], max: 3, leaseMs: 30_000, waitMs: 5000 });
          assert.ok(batch.length > 0);
          got.push(...batch);
        }
        assert.deepEqual(got.map((d) => d.message.id).sort(), [...sent.filter((m) => m.id !== leased!.message.id), later].map((m) => m.id).sort());
        assert.deepEqual(got.map((d) => d.message.attempt), [1, 1, 1], "none counted as delivered");
        assert.ok(Date.now() >= later.runAt, "the held one still not before its due time");
      } finally {
        await a.close();
        await b.close();
      }
    });

    it("a reply inbox's queues expire when unused; a channel's queues do not", async () => {
      const t = await open();
      const conn = await amqp.connect(SERVERS.amqp);
      try {
        const inbox = `${REPLY_CHANNEL_PREFIX}${Date.now().toString(36)}`;
        const plain = `plain-${Date.now().toString(36)}`;
        await t.send([createEnvelope({ name: "r.task", channel: inbox, payload: 1 }), createEnvelope({ name: "r.task", channel: plain, payload: 2 })]);
        // Declaring a queue again with other arguments fails: the inbox's carry x-expires, the plain channel's none.
        const redeclare = async (queue: string, args: amqp.Options.AssertQueue) => {
          const ch = await conn.createChannel();
          ch.on("error", () => {});
          try {
            await ch.assertQueue(queue, args);
            await ch.close();
            return "same";
          } catch (err) {
            return /x-expires/.test(String((err as Error).message)) ? "differs in x-expires" : String((err as Error).message);
          }
        };
        for (const q of [`${runId}:${inbox}`, `${runId}:${inbox}:dead`]) {
          assert.equal(await redeclare(q, queueArguments("quorum")), "differs in x-expires", q);
          assert.equal(await redeclare(q, queueArguments("quorum", inbox)), "same", q);
        }
        assert.equal(await redeclare(`${runId}:${plain}`, queueArguments("quorum")), "same");
        assert.deepEqual(queueArguments("quorum", inbox).arguments?.["x-expires"], REPLY_QUEUE_EXPIRES_MS);
      } finally {
        await conn.close();
        await t.close();
      }
    });

    it("classic queues honour priority", async () => {
      const t = await open({ queueType: "classic" }, `${runId}-classic`);
      try {
        const ch = `prio-${Date.now().toString(36)}`;
        const low = createEnvelope({ name: "p.task", channel: ch, payload: 1, priority: -5 });
        const mid = createEnvelope({ name: "p.task", channel: ch, payload: 2, priority: 0 });
        const high = createEnvelope({ name: "p.task", channel: ch, payload: 3, priority: 10 });
        await t.send([low, mid, high]);
        const order: string[] = [];
        for (let i = 0; i < 3; i++) {
          const [d] = await t.receive({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 2000 });
          order.push(d!.message.id);
        }
        assert.deepEqual(order, [high.id, mid.id, low.id]);
      } finally {
        await t.close();
      }
    });
  });
}
