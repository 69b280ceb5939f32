/**
 * Event-loop stalls of one process while another process writes big batches to the same
 * SQLite file: `npx tsx bench/sqlite-lock-stall.ts` (writes `.bench-tmp/lock-stall.db`).
 * The writer child sends 40,000 messages in one transaction six times; this process sends
 * one message every 10 ms and records how long its event loop went without a turn.
 */
import { fork } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { SqliteTransport } from "../src/transport/sqlite/sqlite-transport.ts";
import { createEnvelope } from "../src/core/envelope.ts";
const path = process.argv[3] ?? ".bench-tmp/lock-stall.db";
if (process.argv[2] === "writer") {
  const t = new SqliteTransport({ path });
  for (let k = 0; k < 6; k++) {
    const now = Date.now();
    const batch = Array.from({ length: 40000 }, (_, i) => createEnvelope({ name: "big", channel: "big", payload: { i, pad: "x".repeat(80) } }, now));
    const t0 = performance.now();
    await t.send(batch);
    process.stdout.write(`writer: 40k in one transaction took ${(performance.now() - t0).toFixed(0)} ms\n`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await t.close();
  process.exit(0);
}
mkdirSync(dirname(path), { recursive: true });
for (const f of [path, path + "-wal", path + "-shm"]) rmSync(f, { force: true });
const t = new SqliteTransport({ path });
let last = performance.now(); let maxGap = 0; const gaps: number[] = [];
const tick = setInterval(() => { const n = performance.now(); const g = n - last; if (g > 20) gaps.push(g); maxGap = Math.max(maxGap, g); last = n; }, 5);
const child = fork(new URL(import.meta.url).pathname, ["writer", path], { execArgv: ["--import", "tsx"] });
const exited = new Promise((r) => child.on("exit", r));
const sendMs: number[] = [];
let running = true; exited.then(() => (running = false));
while (running) {
  const t0 = performance.now();
  await t.send([createEnvelope({ name: "small", channel: "small", payload: {} }, Date.now())]);
  sendMs.push(performance.now() - t0);
  await new Promise((r) => setTimeout(r, 10));
}
clearInterval(tick);
sendMs.sort((a, b) => a - b);
console.log(`reader process: event-loop gaps over 20 ms: ${gaps.length}, longest ${maxGap.toFixed(0)} ms; small sends ${sendMs.length}, p50 ${sendMs[sendMs.length >> 1]!.toFixed(1)} ms, max ${sendMs[sendMs.length - 1]!.toFixed(0)} ms`);
await t.close();
for (const f of [path, path + "-wal", path + "-shm"]) rmSync(f, { force: true });
