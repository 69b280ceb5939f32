/** Tasks for the executor-pool benchmark: CPU-bound and I/O-bound handlers. */
import { createFerry, defineTask, MemoryTransport } from "../../src/index.ts";

/** About `ms` of pure computation. */
function spin(ms: number): number {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x = (x * 31 + 7) % 1_000_003;
  return x;
}

export const cpu = defineTask("bench.cpu", { channel: "pool-bench", run: (p) => spin((p as { ms: number }).ms) });
export const io = defineTask("bench.io", { channel: "pool-bench", run: (p) => new Promise((r) => setTimeout(r, (p as { ms: number }).ms)) });

export default createFerry({ transport: new MemoryTransport(), tasks: [cpu, io] });
