/**
 * Micro benchmark of the RabbitMQ transport beside raw amqplib, for tuning.
 *
 *   npx tsx bench/amqp-transport-micro.ts [count=20000] [rounds=3]
 *
 * Measures: publishing with confirms in batches of 1,000 (raw ConfirmChannel vs
 * `send`), consuming with acks at prefetch 50 (raw consumer vs `receive(max 50)`
 * + `ack` batches, as a worker at concurrency 50 does), with and without the run
 * store, the lateness of delayed messages spread over 0.2-2 s, and of a burst
 * like the harness's delayed scenario (1,000 due 1 s after each send, received
 * 10 at a time). Each round runs every system once,
 * interleaved, and the medians of the rounds are printed (a busy shared machine
 * drifts between runs). Uses its own queues under a unique prefix and deletes
 * them at the end. Figures on a shared 2-core machine are indicative.
 */
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import amqp from "amqplib";
import { createEnvelope, type Envelope } from "../src/core/envelope.ts";
import { optionsFromUrl } from "../src/transport/amqp/amqp-options.ts";
import { AmqpTransport } from "../src/transport/amqp/amqp-transport.ts";

const URL_TEXT = process.env.FERRY_TEST_AMQP ?? "amqp://guest:guest@127.0.0.1:5672/%2F";
const N = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const BATCH = 1000;
const prefix = `ferry-bench-${process.pid}`;
const runStore = join(tmpdir(), `${prefix}.db`);
const toDelete = new Set<string>();

const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);

async function raw(): Promise<{ publish: number; consume: number }> {
  const conn = await amqp.connect(URL_TEXT);
  const pub = await conn.createConfirmChannel();
  const q = `${prefix}:raw`;
  toDelete.add(q);
  await pub.assertQueue(q, { durable: true, arguments: { "x-queue-type": "quorum" } });
  const body = Buffer.from(JSON.stringify({ v: 1, id: "x", name: "bench.task", channel: "raw", payload: { n: 1 } }));
  let t0 = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    for (let j = 0; j < BATCH; j++) pub.sendToQueue(q, body, { persistent: true });
    await pub.waitForConfirms();
  }
  const publish = rate(N, performance.now() - t0);
  const con = await conn.createChannel();
  await con.prefetch(50);
  let got = 0;
  t0 = performance.now();
  await new Promise<void>((resolve) => {
    void con.consume(q, (m) => {
      con.ack(m!);
      if (++got === N) resolve();
    });
  });
  const consume = rate(N, performance.now() - t0);
  await conn.close();
  return { publish, consume };
}

async function ferry(store: boolean): Promise<{ send: number; process: number }> {
  for (const s of ["", "-wal", "-shm"]) if (store) rmSync(runStore + s, { force: true });
  const t = await AmqpTransport.connect({ ...optionsFromUrl(new URL(URL_TEXT)), prefix, runStore: store ? runStore : false });
  const channel = store ? "store" : "nostore";
  const batches: Envelope[][] = [];
  for (let i = 0; i < N; i += BATCH) batches.push(Array.from({ length: BATCH }, (_, j) => createEnvelope({ name: "bench.task", channel, payload: { n: i + j } })));
  let t0 = performance.now();
  for (const b of batches) await t.send(b);
  const send = rate(N, performance.now() - t0);
  let done = 0;
  t0 = performance.now();
  while (done < N) {
    const got = await t.receive({ channels: [channel], max: 50, leaseMs: 30_000, waitMs: 1000 });
    if (got.length === 0) break;
    await t.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
    done += got.length;
  }
  const processed = rate(done, performance.now() - t0);
  for (const n of t.declaredNames()) toDelete.add(n);
  await t.close();
  return { send, process: processed };
}

/** Receive `count` messages `max` at a time, acking them, and push how late each was taken (ms). */
async function receiveLate(t: AmqpTransport, channel: string, count: number, max: number, late: number[]): Promise<void> {
  while (late.length < count) {
    const got = await t.receive({ channels: [channel], max, leaseMs: 30_000, waitMs: 5000 });
    if (got.length === 0) break;
    const at = Date.now();
    for (const d of got) late.push(at - d.message.runAt);
    await t.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
  }
}

let lateRound = 0;
async function lateness(count = 300): Promise<{ p50: number; p99: number; max: number; early: number }> {
  const t = await AmqpTransport.connect({ ...optionsFromUrl(new URL(URL_TEXT)), prefix, runStore: false });
  const channel = `delayed-${++lateRound}`;
  const now = Date.now();
  await t.send(Array.from({ length: count }, (_, i) => createEnvelope({ name: "bench.task", channel, payload: i, runAt: now + 200 + Math.floor((i * 1800) / count) })));
  const late: number[] = [];
  await receiveLate(t, channel, count, 50, late);
  for (const n of t.declaredNames()) toDelete.add(n);
  await t.close();
  late.sort((a, b) => a - b);
  const pct = (p: number) => late[Math.min(late.length - 1, Math.floor(p * late.length))] ?? NaN;
  return { p50: pct(0.5), p99: pct(0.99), max: late[late.length - 1] ?? NaN, early: late.filter((x) => x < 0).length };
}

/**
 * Like the harness's delayed scenario: `count` messages sent one per `send` from 20
 * lanes, each due 1 s after its send, received `max` 10 at a time (a worker at
 * concurrency 10). Copies due at the rate they were sent, in a burst.
 */
let burstRound = 0;
async function burst(count = 1000): Promise<{ p50: number; p99: number; max: number; early: number }> {
  const t = await AmqpTransport.connect({ ...optionsFromUrl(new URL(URL_TEXT)), prefix, runStore: false });
  const channel = `burst-${++burstRound}`;
  const late: number[] = [];
  const consume = receiveLate(t, channel, count, 10, late);
  let next = 0;
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (next < count) {
      next++;
      await t.send([createEnvelope({ name: "bench.task", channel, payload: null, runAt: Date.now() + 1000 })]);
    }
  }));
  await consume;
  for (const n of t.declaredNames()) toDelete.add(n);
  await t.close();
  late.sort((a, b) => a - b);
  const pct = (p: number) => late[Math.min(late.length - 1, Math.floor(p * late.length))] ?? NaN;
  return { p50: pct(0.5), p99: pct(0.99), max: late[late.length - 1] ?? NaN, early: late.filter((x) => x < 0).length };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (a: number, b: number) => `${Math.round((a / b) * 100)}%`;

try {
  const rows = { rawPub: [] as number[], rawCon: [] as number[], noSend: [] as number[], noProc: [] as number[], stSend: [] as number[], stProc: [] as number[], p50: [] as number[], p99: [] as number[], max: [] as number[], early: [] as number[], bp50: [] as number[], bp99: [] as number[], bmax: [] as number[], bearly: [] as number[] };
  for (let round = 1; round <= ROUNDS; round++) {
    const r = await raw();
    const a = await ferry(false);
    const b = await ferry(true);
    const l = await lateness();
    const u = await burst();
    console.log(`round ${round}: raw ${r.publish}/${r.consume}  no store ${a.send}/${a.process}  run store ${b.send}/${b.process}  lateness p50 ${l.p50} p99 ${l.p99} max ${l.max} early ${l.early}  burst p50 ${u.p50} p99 ${u.p99} max ${u.max} early ${u.early}`);
    rows.rawPub.push(r.publish);
    rows.rawCon.push(r.consume);
    rows.noSend.push(a.send);
    rows.noProc.push(a.process);
    rows.stSend.push(b.send);
    rows.stProc.push(b.process);
    rows.p50.push(l.p50);
    rows.p99.push(l.p99);
    rows.max.push(l.max);
    rows.early.push(l.early);
    rows.bp50.push(u.p50);
    rows.bp99.push(u.p99);
    rows.bmax.push(u.max);
    rows.bearly.push(u.early);
  }
  const m = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)])) as Record<keyof typeof rows, number>;
  console.log(`medians of ${ROUNDS}, N=${N}`);
  console.log(`raw amqplib        publish+confirm ${m.rawPub}/s   consume+ack prefetch 50 ${m.rawCon}/s`);
  console.log(`ferry, no store    send            ${m.noSend}/s   receive(50)+ack         ${m.noProc}/s   (${pct(m.noSend, m.rawPub)} / ${pct(m.noProc, m.rawCon)} of raw)`);
  console.log(`ferry, run store   send            ${m.stSend}/s   receive(50)+ack         ${m.stProc}/s   (${pct(m.stSend, m.rawPub)} / ${pct(m.stProc, m.rawCon)} of raw)`);
  console.log(`delayed lateness   p50 ${m.p50} ms   p99 ${m.p99} ms   max ${m.max} ms   early ${m.early}   (300 due 0.2-2 s, spread)`);
  console.log(`burst lateness     p50 ${m.bp50} ms   p99 ${m.bp99} ms   max ${m.bmax} ms   early ${m.bearly}   (1,000 sent one per send from 20 lanes, each due 1 s later, receive max 10)`);
} finally {
  const conn = await amqp.connect(URL_TEXT);
  const ch = await conn.createChannel();
  for (const name of toDelete) {
    await ch.deleteQueue(name);
    if (name.includes("::delay:")) await ch.deleteExchange(name);
  }
  await conn.close();
  for (const s of ["", "-wal", "-shm"]) rmSync(runStore + s, { force: true });
}
