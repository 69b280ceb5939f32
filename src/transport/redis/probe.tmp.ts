import { Redis } from "ioredis";
import { createEnvelope } from "../../core/envelope.ts";
import { RedisTransport } from "./redis-transport.ts";
import { deleteKeys } from "./redis-test-support.ts";
const url = "redis://127.0.0.1:6379/0";
const prefix = `ferry-probe-${process.pid}`;
const t = await RedisTransport.open({ url, prefix, checkServer: false });
const admin = new Redis(url);
const stat = async () => {
  const s = await admin.info("cpu");
  const u = /used_cpu_user_main_thread:([\d.]+)/.exec(s)!;
  const y = /used_cpu_sys_main_thread:([\d.]+)/.exec(s)!;
  return (Number(u[1]) + Number(y[1])) * 1e6;
};
const best = { send: Infinity, recv: Infinity, sendWall: Infinity, recvWall: Infinity };
for (let round = 0; round < 7; round++) {
  const msgs = Array.from({ length: 5000 }, () => createEnvelope({ name: "bench.noop", channel: "c" + round, payload: { n: 1, email: "someone@example.com" } }));
  await t.send(msgs.slice(0, 1));
  let s0 = await stat(); let w = performance.now();
  for (let i = 1; i < 5000; i += 1000) await t.send(msgs.slice(i, i + 1000));
  let s1 = await stat();
  best.sendWall = Math.min(best.sendWall, (performance.now() - w) / 4999 * 1000); best.send = Math.min(best.send, (s1 - s0) / 4999);
  s0 = s1; w = performance.now();
  let n = 0;
  while (n < 5000) { const got = await t.receive({ channels: ["c" + round], max: 50, leaseMs: 30000, waitMs: 0 }); if (!got.length) break; n += got.length; await t.ack(got.map((d) => ({ id: d.message.id, token: d.token }))); }
  s1 = await stat();
  best.recvWall = Math.min(best.recvWall, (performance.now() - w) / n * 1000); best.recv = Math.min(best.recv, (s1 - s0) / n);
}
console.log(`per message, best of 7: send redis-cpu ${best.send.toFixed(2)} us (wall ${best.sendWall.toFixed(2)} us); receive+ack redis-cpu ${best.recv.toFixed(2)} us (wall ${best.recvWall.toFixed(2)} us)`);
await t.close(); await admin.quit(); await deleteKeys(url, prefix);
