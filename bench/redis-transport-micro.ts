/**
 * Micro-benchmark of the raw Redis transport (no worker): single sends, bulk
 * sends, receive+ack in batches of 50, pickup latency of a blocked receiver at
 * a steady 500 messages/s, and lateness of delayed messages. For tuning only;
 * the shared harness in bench/ compares transports end to end. Uses its own key prefix and deletes
 * its keys at the end (never FLUSHDB: the server is shared).
 *
 *   npx tsx bench/redis-transport-micro.ts [count=20000] [redis-url]
 */
import { createEnvelope, type Envelope } from "../src/core/envelope.ts";
import { RedisTransport } from "../src/transport/redis/redis-transport.ts";
import { deleteKeys } from "../src/transport/redis/redis-test-support.ts";

const count = Number(process.argv[2] ?? 20_000);
const url = process.argv[3] ?? process.env.FERRY_TEST_REDIS ?? "redis://127.0.0.1:6379/0";
const prefix = `ferry-bench-${process.pid}-${Date.now().toString(36)}`;
const t = await RedisTransport.open({ url, prefix, checkServer: false });
const make = (channel: string): Envelope => createEnvelope({ name: "bench.noop", channel, payload: { n: 1, email: "someone@example.com" } });

// CPU time of this process per operation is printed beside wall-clock rates:
// on a machine shared with other work it is the steadier figure for tuning.
function report(what: string, n: number, ms: number, cpuUs: number): void {
  const rate = Math.round((n * 1000) / ms).toLocaleString("en-US");
  console.log(`${what.padEnd(40)} ${n} in ${ms.toFixed(0).padStart(5)} ms = ${rate.padStart(8)} /s   client cpu ${(cpuUs / n).toFixed(1).padStart(5)} us/op`);
}

async function timed(what: string, n: number, fn: () => Promise<void>): Promise<void> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(cpu);
  report(what, n, performance.now() - start, used.user + used.system);
}

/** One receive loop: receive up to 50, ack them in one call, until `n` are done in total. */
async function drain(channel: string, n: number, loops = 1): Promise<void> {
  let done = 0;
  const loop = async () => {
    while (done < n) {
      const got = await t.receive({ channels: [channel], max: 50, leaseMs: 30_000, waitMs: 0 });
      if (got.length === 0) return;
      const acks = await t.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
      if (acks.includes(false)) throw new Error("an ack was refused");
      done += got.length;
    }
  };
  await Promise.all(Array.from({ length: loops }, loop));
  if (done < n) throw new Error(`drained only ${done} of ${n}`);
}

/** Pickup latency: one message every 2 ms to a receiver blocked in its wait. */
async function latency(n: number): Promise<void> {
  const sentAt = new Map<string, number>();
  const lat: number[] = [];
  const receiver = (async () => {
    while (lat.length < n) {
      const got = await t.receive({ channels: ["latency"], max: 50, leaseMs: 30_000, waitMs: 1000 });
      const now = performance.now();
      for (const d of got) lat.push(now - sentAt.get(d.message.id)!);
      if (got.length > 0) await t.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
    }
  })();
  for (let i = 0; i < n; i++) {
    const m = make("latency");
    sentAt.set(m.id, performance.now());
    await t.send([m]);
    await new Promise((r) => setTimeout(r, 2));
  }
  await receiver;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(2);
  console.log(`${"pickup latency at ~500/s (send -> leased)".padEnd(40)} ${n} msgs: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms`);
}

/**
 * Delayed pickup: 1,000 messages due 1 s after they are sent (sent over a few hundred ms, as in
 * the harness's delayed scenario), one receiver taking up to 10 at a time; lateness = pickup - due.
 */
async function delayedLateness(n: number): Promise<void> {
  const late: number[] = [];
  const receiver = (async () => {
    while (late.length < n) {
      const got = await t.receive({ channels: ["delayed"], max: 10, leaseMs: 30_000, waitMs: 5000 });
      const now = Date.now();
      for (const d of got) late.push(now - d.message.runAt);
      if (got.length > 0) void t.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
    }
  })();
  let next = 0;
  await Promise.all(Array.from({ length: 10 }, async () => {
    while (next < n) {
      next++;
      await t.send([createEnvelope({ name: "bench.noop", channel: "delayed", payload: { n: next }, runAt: Date.now() + 1000 })]);
    }
  }));
  await receiver;
  late.sort((a, b) => a - b);
  const q = (p: number) => late[Math.min(late.length - 1, Math.floor(p * late.length))]!;
  console.log(`${"delayed lateness (due in 1 s, max 10)".padEnd(40)} ${n} msgs: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms, early ${late.filter((x) => x < 0).length}`);
}

try {
  console.log(`Redis transport micro-benchmark: ${count} messages, node ${process.version}`);
  const single = Array.from({ length: count }, () => make("single"));
  await timed("send, one per call, awaited in turn", count, async () => {
    for (const m of single) await t.send([m]);
  });
  const concurrent = Array.from({ length: count }, () => make("concurrent"));
  await timed("send, one per call, 50 in flight", count, async () => {
    let next = 0;
    await Promise.all(Array.from({ length: 50 }, async () => {
      while (next < concurrent.length) await t.send([concurrent[next++]!]);
    }));
  });
  const bulk = Array.from({ length: count }, () => make("bulk"));
  await timed("send, 1,000 per send()", count, async () => {
    for (let i = 0; i < count; i += 1000) await t.send(bulk.slice(i, i + 1000));
  });
  // One send() of everything: chunks of sendChunk, pipelined (what dispatchMany does).
  const all = Array.from({ length: count }, () => make("all"));
  await timed("send, all in one send()", count, async () => {
    await t.send(all);
  });
  await timed("receive 50 + ack 50, one loop", count, () => drain("single", count));
  await timed("receive 50 + ack 50, 4 loops", count, () => drain("concurrent", count, 4));
  await timed("receive 50 + ack 50, 4 loops (bulk)", count, () => drain("bulk", count, 4));
  await latency(Math.min(count, 2000));
  await delayedLateness(Math.min(count, 1000));
} finally {
  await t.close();
  await deleteKeys(url, prefix);
}
