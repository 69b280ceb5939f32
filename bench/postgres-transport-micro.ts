/**
 * Micro-benchmark of the raw PostgreSQL transport (no worker): single and bulk
 * sends, receive+ack in batches of 50 (one and four receivers, and a consumer
 * loop that reads ahead), wake-up latency of an idle receiver, receive latency
 * with a large backlog (1,000,000 rows by default: ready ones, delayed ones, and
 * finished ones), and counts() and list() on that table. For tuning only; the
 * shared harness in bench/ compares transports end to end.
 *
 *   npx tsx bench/postgres-transport-micro.ts [count=20000] [backlog=1000000]
 *
 * Uses FERRY_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/test) and a
 * schema of its own, dropped at the end.
 */
import pg from "pg";
import { createEnvelope, type Envelope } from "../src/core/envelope.ts";
import { PostgresTransport } from "../src/transport/postgres/postgres-transport.ts";

const url = process.env.FERRY_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";
const count = Number(process.argv[2] ?? 20_000);
const backlog = Number(process.argv[3] ?? 1_000_000);
const schema = `ferry_bench_${process.pid}`;
const t = await PostgresTransport.open({ connectionString: url, schema, poolSize: 10 });
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const make = (channel: string, init: { runAt?: number } = {}): Envelope => createEnvelope({ name: "bench.noop", channel, payload: { n: 1, email: "someone@example.com" }, ...init });

// CPU time per operation beside wall-clock rates: on a shared machine it is the steadier figure.
function report(what: string, n: number, ms: number, cpuUs: number): void {
  const rate = Math.round((n * 1000) / ms).toLocaleString("en-US");
  console.log(`${what.padEnd(44)} ${String(n).padStart(7)} in ${ms.toFixed(0).padStart(6)} ms = ${rate.padStart(8)} /s   cpu ${(cpuUs / n).toFixed(1).padStart(5)} us/op`);
}

async function timed(what: string, n: number, fn: () => Promise<void>): Promise<void> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(cpu);
  report(what, n, performance.now() - start, used.user + used.system);
}

function percentiles(what: string, samples: number[]): void {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(2);
  console.log(`${what.padEnd(44)} n=${s.length} p50 ${at(0.5)} ms  p90 ${at(0.9)} ms  p99 ${at(0.99)} ms  max ${s.at(-1)!.toFixed(2)} ms`);
}

/** Receive and ack until `n` are done; `loop` receives as the worker does (waiting, with a signal), so read-ahead applies. */
async function drain(channel: string, n: number, max = 50, loop?: AbortSignal): Promise<number> {
  let done = 0;
  while (done < n) {
    const got = await t.receive({ channels: [channel], max, leaseMs: 30_000, ...(loop ? { waitMs: 1000, signal: loop } : { waitMs: 0 }) });
    if (got.length === 0) break;
    const acks = await t.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
    if (acks.includes(false)) throw new Error("an ack was refused");
    done += got.length;
  }
  return done;
}

/** Latency of receive(max 50) on `channel` (each batch then acked, untimed), `rounds` times. */
async function receiveLatency(what: string, channel: string, rounds: number): Promise<void> {
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    const got = await t.receive({ channels: [channel], max: 50, leaseMs: 30_000, waitMs: 0 });
    samples.push(performance.now() - start);
    if (got.length > 0) await t.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
  }
  percentiles(what, samples);
}

/** Insert rows server-side (the client would be the bottleneck): ready, delayed or completed. */
async function fill(channel: string, n: number, kind: "ready" | "delayed" | "completed"): Promise<void> {
  const now = Date.now();
  const runAt = kind === "delayed" ? now + 86_400_000 : now - 60_000;
  for (let i = 0; i < n; i += 100_000) {
    await admin.query(
      `INSERT INTO "${schema}".messages (id, channel, name, payload, run_at, due_at, created_at, state, finished_at)
       SELECT $1::text || g, $2::text, 'bench.noop', '{"n":1}', $3::float8 + g / 1000.0, $3::float8 + g / 1000.0, $4::float8, $5::text,
         CASE WHEN $5::text = 'completed' THEN $4::float8 END
       FROM generate_series($6::int, $7::int) g`,
      [`${channel}-`, channel, runAt, now, kind === "completed" ? "completed" : "waiting", i, Math.min(n, i + 100_000) - 1],
    );
  }
  await admin.query(`ANALYZE "${schema}".messages`);
}

try {
  console.log(`PostgreSQL transport micro-benchmark: ${count} messages, backlog ${backlog}, node ${process.version}, ${(await admin.query("SHOW server_version")).rows[0].server_version}`);
  const singles = Array.from({ length: Math.min(count, 5000) }, () => make("single"));
  await timed("send, one message per call", singles.length, async () => {
    for (const m of singles) await t.send([m]);
  });
  const parallel = Array.from({ length: count }, () => make("single"));
  await timed("send, one per call, 50 in flight", count, async () => {
    let next = 0;
    await Promise.all(Array.from({ length: 50 }, async () => {
      while (next < parallel.length) await t.send([parallel[next++]!]);
    }));
  });
  const bulk = Array.from({ length: count }, () => make("bulk"));
  await timed("send, 1,000 per call", count, async () => {
    for (let i = 0; i < count; i += 1000) await t.send(bulk.slice(i, i + 1000));
  });
  await timed("receive 50 + ack 50, one receiver", count, async () => void (await drain("bulk", count)));
  await t.send(Array.from({ length: count }, () => make("loop")));
  const loop = new AbortController();
  await timed("receive 50 + ack 50, consumer loop (read-ahead)", count, async () => void (await drain("loop", count, 50, loop.signal)));
  loop.abort();
  const total = singles.length + parallel.length;
  await timed("receive 50 + ack 50, four receivers", total, async () => {
    const n = (await Promise.all([1, 2, 3, 4].map(() => drain("single", total)))).reduce((a, b) => a + b, 0);
    if (n !== total) throw new Error(`drained ${n} of ${total}`);
  });

  // Wake-up latency: an idle receiver, a send every 5 ms from another transport.
  const sender = await PostgresTransport.open({ connectionString: url, schema, poolSize: 2, migrate: false });
  const wake: number[] = [];
  for (let i = 0; i < 200; i++) {
    const pending = t.receive({ channels: ["wake"], max: 1, leaseMs: 30_000, waitMs: 5000 });
    await new Promise((r) => setTimeout(r, 5));
    const sentAt = performance.now();
    await sender.send([make("wake")]);
    const [d] = await pending;
    wake.push(performance.now() - sentAt);
    if (d) await t.ack([{ id: d.message.id, token: d.token }]);
  }
  percentiles("idle receiver woken by a send (send+wake)", wake);
  // Delayed lateness: due in 50-150 ms, how late is the delivery?
  const late: number[] = [];
  for (let i = 0; i < 50; i++) {
    const runAt = Date.now() + 50 + (i % 100);
    await sender.send([make("late", { runAt })]);
    const [d] = await t.receive({ channels: ["late"], max: 1, leaseMs: 30_000, waitMs: 5000 });
    late.push(Date.now() - runAt);
    if (d) await t.ack([{ id: d.message.id, token: d.token }]);
  }
  percentiles("delayed message lateness", late);
  await sender.close();

  await t.send(Array.from({ length: 1000 }, () => make("small")));
  await receiveLatency("receive 50, 1,000-row channel", "small", 20);
  if (backlog > 0) {
    let start = performance.now();
    await fill("ready", backlog, "ready");
    console.log(`filled ${backlog} ready rows in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    await receiveLatency(`receive 50, ${backlog}-row ready backlog`, "ready", 200);
    start = performance.now();
    await fill("delayed", backlog, "delayed");
    await fill("done", backlog, "completed");
    console.log(`filled ${backlog} delayed and ${backlog} completed rows in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    await t.send(Array.from({ length: 1000 }, () => make("delayed")));
    await receiveLatency(`receive 50, 1,000 due among ${backlog} delayed`, "delayed", 20);
    await receiveLatency("receive, nothing due, only delayed rows", "delayed", 20);
    await receiveLatency("receive, empty channel (big table)", "small", 20);
    await t.send(Array.from({ length: 1000 }, () => make("small")));
    await receiveLatency("receive 50, new 1,000-row channel (big table)", "small", 20);
    await timed("receive 50 + ack 50 from the ready backlog", 20_000, async () => void (await drain("ready", 20_000)));
    for (const [what, fn] of [
      ["counts(), every channel", () => t.counts()],
      ["list completed, every channel, 50", () => t.list({ state: "completed", limit: 50 })],
      ["list completed, one channel, 50", () => t.list({ state: "completed", channel: "done", limit: 50 })],
      ["list waiting, every channel, 50", () => t.list({ state: "waiting", limit: 50 })],
    ] as const) {
      const samples: number[] = [];
      for (let i = 0; i < 5; i++) {
        const start = performance.now();
        await fn();
        samples.push(performance.now() - start);
      }
      percentiles(`${what} (${backlog * 3}-row table)`, samples);
    }
    start = performance.now();
    const pruned = await t.prune({ before: Date.now() + 1 });
    console.log(`pruned ${pruned} finished rows in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  }
} finally {
  await t.close();
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
}
