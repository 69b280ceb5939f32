import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import amqp, { type Channel, type ChannelModel } from "amqplib";
import { z } from "zod";
import { defineTask, type TaskDefinition } from "../../bus/define.ts";
import { createFerry, type Ferry } from "../../bus/ferry.ts";
import type { Envelope } from "../../core/envelope.ts";
import { FerryError, isFerryError } from "../../core/errors.ts";
import { MemoryTransport } from "../memory/memory-transport.ts";
import type { SendReceipt, Transport } from "../types.ts";
import { SERVERS, serverSkipReason } from "../../../tests/support/servers.ts";
import { bridgeMessageId, startBridge, type Bridge, type BridgeOptions } from "./bridge.ts";

const skipReason = await serverSkipReason("amqp");
const runId = `ferry-test-bridge-${process.pid}-${Date.now().toString(36)}`;
const quiet = () => {};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A memory transport whose sends fail (or store and then fail) as told: a store that is down, or a reply lost after commit. */
class FlakyTransport implements Transport {
  readonly kind = "flaky";
  readonly inner = new MemoryTransport();
  failNext = 0;
  storeThenFailNext = 0;
  sends = 0;
  async send(messages: readonly Envelope[]): Promise<SendReceipt[]> {
    this.sends++;
    if (this.failNext > 0) {
      this.failNext--;
      throw new FerryError("TRANSPORT_UNAVAILABLE", "flaky: the store is down");
    }
    const receipts = await this.inner.send(messages);
    if (this.storeThenFailNext > 0) {
      this.storeThenFailNext--;
      throw new FerryError("TRANSPORT_UNAVAILABLE", "flaky: stored, but the reply was lost");
    }
    return receipts;
  }
  receive: Transport["receive"] = (r) => this.inner.receive(r);
  ack: Transport["ack"] = (i) => this.inner.ack(i);
  retry: Transport["retry"] = (i) => this.inner.retry(i);
  deadLetter: Transport["deadLetter"] = (i) => this.inner.deadLetter(i);
  extend: Transport["extend"] = (i, ms) => this.inner.extend(i, ms);
  close = () => this.inner.close();
}

if (skipReason) {
  describe("amqp bridge", () => it("needs RabbitMQ", { skip: skipReason }, () => {}));
} else {
  describe("amqp bridge", () => {
    let conn: ChannelModel;
    let ch: Channel;
    const queues = new Set<string>();
    const exchanges = new Set<string>();
    let counter = 0;
    const running: Bridge[] = [];

    before(async () => {
      conn = await amqp.connect(SERVERS.amqp);
      ch = await conn.createConfirmChannel();
      ch.on("error", () => {}); // the passive check's 404 closes the channel; that test opens a new one
    });

    after(async () => {
      for (const q of queues) await ch.deleteQueue(q);
      for (const x of exchanges) await ch.deleteExchange(x);
      await conn.close();
    });

    /** The other system's exchange (and a dead-letter exchange with a queue to read rejects from). */
    async function sourceExchange(): Promise<{ exchange: string; dlx: string; dlq: string }> {
      const exchange = `${runId}-x${counter++}`;
      const dlx = `${exchange}-dlx`;
      const dlq = `${exchange}-dlq`;
      await ch.assertExchange(exchange, "topic", { durable: false });
      await ch.assertExchange(dlx, "fanout", { durable: false });
      await ch.assertQueue(dlq, { durable: false });
      await ch.bindQueue(dlq, dlx, "");
      exchanges.add(exchange).add(dlx);
      queues.add(dlq);
      return { exchange, dlx, dlq };
    }

    /** Publish as a foreign producer would: plain JSON or text, no Ferry envelope. */
    async function publish(exchange: string, routingKey: string, body: unknown, props: amqp.Options.Publish = {}): Promise<void> {
      const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
      ch.publish(exchange, routingKey, content, { persistent: true, ...(typeof body === "string" || Buffer.isBuffer(body) ? {} : { contentType: "application/json" }), ...props });
      await (ch as amqp.ConfirmChannel).waitForConfirms();
    }

    async function bridge<T extends TaskDefinition>(ferry: Ferry, options: Omit<BridgeOptions<T>, "url">): Promise<Bridge> {
      const b = await startBridge(ferry, { url: SERVERS.amqp, logger: quiet, ...options });
      queues.add(b.queue);
      running.push(b);
      return b;
    }

    /** Close the bridges (started here with startBridge, so the Ferry does not own them), then the Ferry. */
    async function closeAll(ferry: Ferry): Promise<void> {
      await Promise.all(running.splice(0).map((b) => b.close()));
      await ferry.close();
    }

    const shipment = z.object({ shop: z.string(), order: z.string(), note: z.string() });
    const toShipment = (body: unknown, m: { routingKey: string }) => {
      const [shop = "", order = ""] = m.routingKey.split(".");
      return { shop, order, note: typeof body === "string" ? body : (body as { note: string }).note };
    };

    it("turns matching messages into tasks that a worker runs, and leaves the others alone", async () => {
      const { exchange } = await sourceExchange();
      const ran: unknown[] = [];
      const task = defineTask("shop.send-goods", { schema: shipment, channel: "goods", run: (p) => void ran.push(p) });
      const memory = new MemoryTransport();
      const ferry = createFerry({ transport: memory, tasks: [task] });
      const dispatched: string[] = [];
      ferry.events.on("dispatched", (e) => dispatched.push(e.id));
      try {
        const b = await bridge(ferry, { exchange, type: "topic", pattern: "*.*.WAIT_SELLER_SEND_GOODS", to: task, map: toShipment });
        await ferry.worker({ channels: ["goods"], concurrency: 4 }).start();
        await publish(exchange, "shop1.order42.WAIT_SELLER_SEND_GOODS", { note: "json" }, { messageId: "m-42" });
        await publish(exchange, "shop2.order7.WAIT_SELLER_SEND_GOODS", "plain text", { contentType: "text/plain" });
        await publish(exchange, "shop1.order42.PAID", { note: "not for us" });
        await publish(exchange, "eu.shop1.order9.WAIT_SELLER_SEND_GOODS", { note: "four words do not match *.*.X" });
        await until("two runs", () => ran.length === 2);
        await sleep(200);
        assert.deepEqual(
          ran.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
          [
            { shop: "shop1", order: "order42", note: "json" },
            { shop: "shop2", order: "order7", note: "plain text" },
          ],
        );
        assert.deepEqual(b.counts, { received: 2, enqueued: 2, deduplicated: 0, rejected: 0, failed: 0 });
        assert.ok(dispatched.includes(bridgeMessageId(b.queue, "m-42")), "a message with an AMQP messageId gets an id derived from it");
        const record = await memory.get(bridgeMessageId(b.queue, "m-42"));
        assert.equal(record?.message.headers.sourceMessageId, "m-42");
        assert.equal(record?.message.headers.routingKey, "shop1.order42.WAIT_SELLER_SEND_GOODS");
        assert.equal((await ch.checkQueue(b.queue)).messageCount, 0, "every source message was acked");
      } finally {
        await closeAll(ferry);
      }
    });

    it("rejects what cannot become a payload to the dead-letter exchange, counted with a code, and goes on", async () => {
      const { exchange, dlx, dlq } = await sourceExchange();
      const ran: unknown[] = [];
      const task = defineTask("shop.send-goods", { schema: shipment, channel: "goods", run: (p) => void ran.push(p) });
      const ferry = createFerry({ transport: new MemoryTransport(), tasks: [task] });
      const warnings: string[] = [];
      ferry.events.on("warning", (w) => warnings.push(w.code));
      try {
        const b = await bridge(ferry, {
          exchange,
          pattern: "#",
          to: task,
          deadLetterExchange: dlx,
          map: (body, m) => {
            if (m.routingKey === "x.boom") throw new Error("cannot map");
            return body as never;
          },
        });
        await ferry.worker({ channels: ["goods"], concurrency: 2 }).start();
        await publish(exchange, "x.schema", { shop: "s", order: 1 }); // order must be a string
        await publish(exchange, "x.boom", { shop: "s", order: "o", note: "n" });
        await publish(exchange, "x.json", "{not json", { contentType: "application/json" });
        await publish(exchange, "x.ok", { shop: "s", order: "o", note: "fine" });
        await until("three rejects and a run", () => b.counts.rejected === 3 && ran.length === 1);
        assert.deepEqual(ran, [{ shop: "s", order: "o", note: "fine" }]);
        assert.equal(b.counts.enqueued, 1);
        assert.deepEqual(warnings.sort(), ["INVALID_MESSAGE", "INVALID_MESSAGE", "INVALID_PAYLOAD"]);
        const dead: string[] = [];
        const deadline = Date.now() + 5000;
        while (dead.length < 3 && Date.now() < deadline) {
          const m = await ch.get(dlq, { noAck: true });
          if (m) dead.push(m.fields.routingKey);
          else await sleep(20);
        }
        assert.deepEqual(dead.sort(), ["x.boom", "x.json", "x.schema"], "rejected messages reach the dead-letter exchange unchanged");
      } finally {
        await closeAll(ferry);
      }
    });

    it("acks the source only after the task is stored: a failed enqueue brings the message back", async () => {
      const { exchange } = await sourceExchange();
      const ran: unknown[] = [];
      const task = defineTask("shop.send-goods", { schema: shipment, channel: "goods", run: (p) => void ran.push(p) });
      const transport = new FlakyTransport();
      transport.failNext = 2;
      const ferry = createFerry({ transport, tasks: [task] });
      try {
        const b = await bridge(ferry, { exchange, pattern: "*.*.WAIT_SELLER_SEND_GOODS", to: task, map: toShipment, retryDelayMs: 20 });
        await ferry.worker({ channels: ["goods"], concurrency: 2 }).start();
        await publish(exchange, "shop1.order1.WAIT_SELLER_SEND_GOODS", { note: "must not be lost" });
        await until("the run", () => ran.length === 1);
        assert.deepEqual(ran, [{ shop: "shop1", order: "order1", note: "must not be lost" }]);
        assert.equal(transport.sends, 3, "two failed sends, then one that stored it");
        assert.deepEqual(b.counts, { received: 3, enqueued: 1, deduplicated: 0, rejected: 0, failed: 2 }, "the source came back after each failure");
        await sleep(100);
        assert.equal(ran.length, 1);
      } finally {
        await closeAll(ferry);
      }
    });

    it("a redelivery of a stored message (reply lost after the store) is stored once, by its messageId", async () => {
      const { exchange } = await sourceExchange();
      const ran: unknown[] = [];
      const task = defineTask("shop.send-goods", { schema: shipment, channel: "goods", run: (p) => void ran.push(p) });
      const transport = new FlakyTransport();
      transport.storeThenFailNext = 1;
      const ferry = createFerry({ transport, tasks: [task] });
      try {
        const b = await bridge(ferry, { exchange, pattern: "*.*.WAIT_SELLER_SEND_GOODS", to: task, map: toShipment, retryDelayMs: 20 });
        await publish(exchange, "shop1.order2.WAIT_SELLER_SEND_GOODS", { note: "once" }, { messageId: "order2-goods" });
        await until("the redelivery", () => b.counts.deduplicated === 1);
        assert.deepEqual(b.counts, { received: 2, enqueued: 0, deduplicated: 1, rejected: 0, failed: 1 });
        await ferry.worker({ channels: ["goods"], concurrency: 2 }).start();
        await until("the run", () => ran.length === 1);
        await sleep(100);
        assert.equal(ran.length, 1, "stored and run once");
      } finally {
        await closeAll(ferry);
      }
    });

    it("resumes after a restart: messages published while it was stopped wait in its durable queue", async () => {
      const { exchange } = await sourceExchange();
      const ran: unknown[] = [];
      const task = defineTask("shop.send-goods", { schema: shipment, channel: "goods", run: (p) => void ran.push(p) });
      const ferry = createFerry({ transport: new MemoryTransport(), tasks: [task] });
      try {
        const first = await bridge(ferry, { exchange, pattern: "*.*.WAIT_SELLER_SEND_GOODS", to: task, map: toShipment });
        await first.close();
        await publish(exchange, "shop3.order3.WAIT_SELLER_SEND_GOODS", { note: "while down" });
        const second = await bridge(ferry, { exchange, pattern: "*.*.WAIT_SELLER_SEND_GOODS", to: task, map: toShipment });
        assert.equal(second.queue, first.queue, "the default queue name is stable");
        await ferry.worker({ channels: ["goods"], concurrency: 2 }).start();
        await until("the run", () => ran.length === 1);
        assert.deepEqual(ran, [{ shop: "shop3", order: "order3", note: "while down" }]);
      } finally {
        await closeAll(ferry);
      }
    });

    it("comes back after its connection is cut; what was published meanwhile becomes a task", async () => {
      const { exchange } = await sourceExchange();
      const ran: unknown[] = [];
      const task = defineTask("shop.send-goods", { schema: shipment, channel: "goods", run: (p) => void ran.push(p) });
      const ferry = createFerry({ transport: new MemoryTransport(), tasks: [task] });
      const logged: string[] = [];
      try {
        const b = await startBridge(ferry, { url: SERVERS.amqp, exchange, pattern: "*.*.WAIT_SELLER_SEND_GOODS", to: task, map: toShipment, logger: (m) => logged.push(m) });
        queues.add(b.queue);
        running.push(b);
        const link = (b as unknown as { link: { generation: number; model: { connection: { stream: { destroy(): void } } } } }).link;
        link.model.connection.stream.destroy();
        await publish(exchange, "shop4.order4.WAIT_SELLER_SEND_GOODS", { note: "across a reconnection" }, { messageId: "order4" });
        await ferry.worker({ channels: ["goods"], concurrency: 2 }).start();
        await until("the run", () => ran.length === 1, 10_000);
        assert.deepEqual(ran, [{ shop: "shop4", order: "order4", note: "across a reconnection" }]);
        assert.ok(logged.some((l) => l.includes("lost the RabbitMQ")), "the loss was logged");
        assert.ok(logged.some((l) => l.includes("reconnected")), "the recovery was logged");
        const now = (b as unknown as { link: { generation: number } }).link;
        assert.ok(now.generation > link.generation);
      } finally {
        await closeAll(ferry);
      }
    });

    it("checks the exchange passively unless told to declare it", async () => {
      const task = defineTask("shop.send-goods", { schema: shipment, run: () => {} });
      const ferry = createFerry({ transport: new MemoryTransport(), tasks: [task] });
      const exchange = `${runId}-missing`;
      try {
        await assert.rejects(bridge(ferry, { exchange, pattern: "#", to: task }), (err) => isFerryError(err, "CONFIG_INVALID"));
        await assert.rejects(ch.checkExchange(exchange).then(() => undefined), "the passive check did not create it");
        ch = await conn.createConfirmChannel(); // the failed check closed the test's channel
        ch.on("error", () => {});
        exchanges.add(exchange);
        const b = await bridge(ferry, { exchange, pattern: "#", to: task, declareExchange: true });
        await ch.checkExchange(exchange);
        await b.close();
        await assert.rejects(startBridge(ferry, { url: SERVERS.amqp, exchange, to: task } as BridgeOptions), (err) => isFerryError(err, "INVALID_OPTION"), "a topic bridge needs a pattern");
      } finally {
        await closeAll(ferry);
      }
    });
  });
}
