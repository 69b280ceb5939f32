import { createEnvelope } from "../../core/envelope.ts";
import { RedisTransport } from "./redis-transport.ts";
import { deleteKeys } from "./redis-test-support.ts";
const prefix = `ferry-probe4-${process.pid}`;
const t = await RedisTransport.open({ url: "redis://127.0.0.1:6379/0", prefix, checkServer: false, retention: { completed: { count: 0 } } });
for (let round = 0; round < 4; round++) {
  const msgs = Array.from({ length: 20000 }, (_, i) => createEnvelope({ name: "bench.noop", channel: "c", payload: { n: i, email: "someone@example.com" } }));
  let t0 = performance.now();
  await Promise.all(Array.from({ length: 20 }, (_, k) => t.send(msgs.slice(k * 1000, k * 1000 + 1000))));
  const sendMs = performance.now() - t0;
  t0 = performance.now();
  let n = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (;;) { const got = await t.receive({ channels: ["c"], max: 50, leaseMs: 30000, waitMs: 0 }); if (!got.length) return; n += got.length; await t.ack(got.map((d) => ({ id: d.message.id, token: d.token }))); }
  }));
  const dt = performance.now() - t0;
  console.log(`bulk send 20 x 1000 concurrent: ${Math.round(20000 / sendMs * 1000)}/s; receive+ack 4 loops: ${n} in ${dt.toFixed(0)} ms = ${Math.round(n / dt * 1000)}/s`);
}
await t.close();
await deleteKeys("redis://127.0.0.1:6379/0", prefix);
