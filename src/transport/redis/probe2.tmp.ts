import { createFerry, defineTask } from "../../index.ts";
import { deleteKeys } from "./redis-test-support.ts";
const prefix = `ferry-probe2-${process.pid}`;
const task = defineTask("bench.noop", { channel: "bench.x", async run() {} });
const ferry = createFerry({ transport: `redis://127.0.0.1:6379/0?prefix=${prefix}`, tasks: [task] });
await ferry.dispatch(task, { n: 0 });
for (let round = 0; round < 3; round++) {
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) await ferry.dispatch(task, { n: i });
  const dt = performance.now() - t0;
  console.log(`ferry dispatch x1000: ${dt.toFixed(0)} ms = ${Math.round(1000_000 / dt)}/s`);
}
await ferry.close();
await deleteKeys("redis://127.0.0.1:6379/0", prefix);
