/**
 * The RabbitMQ limit: amqplib on one durable classic queue per namespace.
 * Enqueue publishes persistent messages on a confirm channel and waits for the
 * broker's confirm (bulk: publish 1,000, then wait for their confirms); the
 * worker consumes with manual acks at prefetch = concurrency. No delays (AMQP
 * has none without plugins or TTL tricks), so the delayed scenario is not applicable.
 */
import amqp from "amqplib";
import { SERVERS } from "../support/servers.ts";
import type { BenchPayload, SystemFactory } from "./types.ts";

const CHUNK = 1000;

async function deleteQueue(queue: string): Promise<void> {
  const conn = await amqp.connect(SERVERS.amqp);
  try {
    const ch = await conn.createChannel();
    await ch.deleteQueue(queue);
    await ch.close();
  } finally {
    await conn.close();
  }
}

/** The raw-amqp system. */
export const rawAmqp: SystemFactory = {
  name: "raw-amqp",
  library: "amqplib",
  server: "amqp",
  raw: true,
  settings: "amqplib with its socket defaults (Nagle on, as amqp.connect leaves it), one durable classic queue, persistent messages on a confirm channel (bulk: 1,000 publishes then waitForConfirms), worker consume with manual ack at prefetch = concurrency",
  async create(namespace) {
    const queue = `ferrybench.${namespace}`;
    const conn = await amqp.connect(SERVERS.amqp);
    const pub = await conn.createConfirmChannel();
    await pub.assertQueue(queue, { durable: true });
    const publish = (p: BenchPayload) => pub.sendToQueue(queue, Buffer.from(JSON.stringify(p)), { persistent: true });
    const consumers: amqp.Channel[] = [];
    return {
      async enqueueOne(payload) {
        await new Promise<void>((resolve, reject) => {
          pub.sendToQueue(queue, Buffer.from(JSON.stringify(payload)), { persistent: true }, (err) => (err ? reject(err) : resolve()));
        });
      },
      async enqueueBulk(payloads) {
        for (let i = 0; i < payloads.length; i += CHUNK) {
          for (const p of payloads.slice(i, i + CHUNK)) {
            if (!publish(p)) await new Promise((r) => pub.once("drain", r));
          }
          await pub.waitForConfirms();
        }
      },
      async takeBatch(max) {
        const ch = await conn.createChannel();
        try {
          let n = 0;
          for (; n < max; n++) {
            const msg = await ch.get(queue, { noAck: true });
            if (msg === false) break;
          }
          return n;
        } finally {
          await ch.close();
        }
      },
      async startWorker({ concurrency }, handler) {
        const ch = await conn.createChannel();
        consumers.push(ch);
        await ch.prefetch(concurrency);
        const { consumerTag } = await ch.consume(
          queue,
          (msg) => {
            if (msg === null) return;
            const done = () => ch.ack(msg);
            const r = handler(JSON.parse(msg.content.toString()) as BenchPayload);
            if (r instanceof Promise) r.then(done, done);
            else done();
          },
          { noAck: false },
        );
        return {
          async stop() {
            await ch.cancel(consumerTag);
            await new Promise((r) => setTimeout(r, 20));
            consumers.splice(consumers.indexOf(ch), 1);
            await ch.close();
          },
        };
      },
      async teardown() {
        for (const ch of consumers.splice(0)) await ch.close().catch(() => undefined);
        await pub.deleteQueue(queue);
        await pub.close();
        await conn.close();
      },
    };
  },
  async cleanup(namespace) {
    await deleteQueue(`ferrybench.${namespace}`);
  },
};
