/**
 * A new executor starts below the pool's CPU priority and gets it back once ready;
 * where the process may not raise a priority back (no CAP_SYS_NICE), the pool
 * warns once and its executors still run work.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { getPriority } from "node:os";
import { fileURLToPath } from "node:url";
import { afterEach, describe, it } from "node:test";
import { ProcessPool } from "../../src/worker/pool/process-pool.ts";

const APP = fileURLToPath(new URL("../fixtures/pool-app.ts", import.meta.url));
const CHILD = fileURLToPath(new URL("./priority-child.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const isRoot = process.getuid?.() === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("process pool start priority", () => {
  const pools: ProcessPool[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  it("starts an executor 10 nice steps lower and restores the pool's priority once it is ready", { skip: isRoot ? false : "needs root to raise a priority back (run as root, as CI does)" }, async () => {
    const base = getPriority();
    const pool = new ProcessPool({ app: APP, processes: 1, spares: 0 });
    pools.push(pool);
    // Catch the child while it loads the app (a few hundred ms with the TypeScript loader).
    let starting: number | undefined;
    for (let i = 0; i < 2000 && starting === undefined; i++) {
      const s = pool.stats().find((e) => e.pid > 0 && !e.ready);
      if (s) starting = getPriority(s.pid);
      else await sleep(1);
    }
    assert.equal(starting, Math.min(19, base + 10), "a starting executor runs 10 nice steps below the pool");
    await pool.ready();
    const [ready] = pool.stats();
    assert.ok(ready && ready.ready);
    assert.equal(getPriority(ready.pid), base, "a ready executor has the pool's priority back");
  });

  it("without the right to raise it back, warns EXECUTOR_PRIORITY once and still runs work", { skip: isRoot && existsSync("/usr/bin/setpriv") ? false : "needs root and setpriv to run the pool as an unprivileged user" }, async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "--import", TSX, CHILD], { timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    const result = JSON.parse(out.trim().split("\n").at(-1)!) as { uid: number; warnings: string[]; ranElsewhere: boolean };
    assert.equal(result.uid, 65534);
    assert.deepEqual(result.warnings.filter((w) => w === "EXECUTOR_PRIORITY"), ["EXECUTOR_PRIORITY"]);
    assert.equal(result.ranElsewhere, true, "the task ran in an executor process");
  });
});
