import { createEnvelope } from "../../core/envelope.ts";
import { RedisTransport } from "./redis-transport.ts";
import { deleteKeys } from "./redis-test-support.ts";
const prefix = `ferry-probe3-${process.pid}`;
const t = await RedisTransport.open({ url: "redis://127.0.0.1:6379/0", prefix, checkServer: false });
for (let round = 0; round < 3; round++) {
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) await t.send([createEnvelope({ name: "bench.noop", channel: "bench.x", payload: { n: i } })]);
  const dt = performance.now() - t0;
  console.log(`raw send x1000: ${dt.toFixed(0)} ms = ${Math.round(1000_000 / dt)}/s`);
}
await t.close();
await deleteKeys("redis://127.0.0.1:6379/0", prefix);
