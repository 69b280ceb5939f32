/**
 * Micro-benchmark of the raw SQLite transport (no worker): single sends, bulk
 * sends, and receive+ack in batches of 50, printing operations per second.
 * For tuning only; the shared harness in bench/ compares transports end to end.
 *
 *   npx tsx bench/sqlite-transport-micro.ts [count=20000] [synchronous=normal]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnvelope, type Envelope } from "../src/core/envelope.ts";
import type { SqliteSynchronous } from "../src/transport/sqlite/sqlite-schema.ts";
import { SqliteTransport } from "../src/transport/sqlite/sqlite-transport.ts";

const count = Number(process.argv[2] ?? 20_000);
const synchronous = (process.argv[3] ?? "normal") as SqliteSynchronous;
const dir = mkdtempSync(join(tmpdir(), "ferry-sqlite-micro-"));
const t = new SqliteTransport({ path: join(dir, "micro.db"), synchronous, watch: process.env.WATCH !== "false" });
const make = (channel: string): Envelope => createEnvelope({ name: "bench.noop", channel, payload: { n: 1, email: "someone@example.com" } });

// CPU time per operation is printed beside wall-clock rates: on a machine shared
// with other work it is the steadier figure for tuning.
function report(what: string, n: number, ms: number, cpuUs: number): void {
  const rate = Math.round((n * 1000) / ms).toLocaleString("en-US");
  console.log(`${what.padEnd(38)} ${n} in ${ms.toFixed(0).padStart(5)} ms = ${rate.padStart(8)} /s   cpu ${(cpuUs / n).toFixed(1).padStart(5)} us/op`);
}

async function timed(what: string, n: number, fn: () => Promise<void>): Promise<void> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(cpu);
  report(what, n, performance.now() - start, used.user + used.system);
}

async function drain(channel: string, n: number): Promise<void> {
  let done = 0;
  while (done < n) {
    const got = await t.receive({ channels: [channel], max: 50, leaseMs: 30_000, waitMs: 0 });
    if (got.length === 0) throw new Error(`drained only ${done} of ${n}`);
    const acks = await t.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
    if (acks.includes(false)) throw new Error("an ack was refused");
    done += got.length;
  }
}

try {
  console.log(`SQLite transport micro-benchmark: ${count} messages, synchronous=${synchronous}, node ${process.version}`);
  const single = Array.from({ length: count }, () => make("single"));
  await timed("send, one message per call", count, async () => {
    for (const m of single) await t.send([m]);
  });
  const bulk = Array.from({ length: count }, () => make("bulk"));
  await timed("send, 1,000 per call", count, async () => {
    for (let i = 0; i < count; i += 1000) await t.send(bulk.slice(i, i + 1000));
  });
  await timed("receive 50 + ack 50 (backlog)", count, () => drain("single", count));
  await timed("receive 50 + ack 50 (second channel)", count, () => drain("bulk", count));
  const mixed = Array.from({ length: count }, () => make("mixed"));
  await timed("send 50, receive 50, ack 50 (steady)", count, async () => {
    for (let i = 0; i < count; i += 50) {
      await t.send(mixed.slice(i, i + 50));
      await drain("mixed", Math.min(50, count - i));
    }
  });
} finally {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
}
