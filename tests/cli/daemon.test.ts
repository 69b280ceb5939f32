/**
 * `ferry worker --processes --daemon`, `ferry worker status` and `ferry worker stop`,
 * run as a user would, against a temp SQLite file.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createFerry, isInspectable } from "../../src/index.ts";
import { ok } from "./fixtures/app.ts";
import { runCli } from "./run-cli.ts";

const dir = mkdtempSync(join(tmpdir(), "ferry-daemon-"));
const url = `sqlite://${join(dir, "q.db")}`;
const pidFile = join(dir, "worker.pid");
const env = { FERRY_URL: url };

describe("ferry worker as a daemon with a process pool", () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("starts in the background, reports live figures per executor, and stops gracefully", async () => {
    const started = await runCli(["worker", "--app", "tests/cli/fixtures/app.ts", "--processes", "2", "--spares", "2", "--kill-grace", "2s", "--max-tasks", "10", "--daemon", "--pid-file", pidFile, "--log-file", join(dir, "w.log")], env, 60_000);
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /started in the background, pid \d+/);
    const ferry = createFerry({ transport: url, tasks: [ok] });
    await ferry.dispatchMany(ok, Array.from({ length: 30 }, (_, n) => ({ n })));
    const transport = await ferry.transport("cli-a");
    assert.ok(isInspectable(transport));
    for (let i = 0; i < 600; i++) {
      const c = (await transport.counts()).find((x) => x.channel === "cli-a");
      if (c?.completed === 30) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await transport.counts()).find((x) => x.channel === "cli-a")?.completed, 30);
    // --max-tasks 10 retired executors during the 30 runs; their replacements start as spares and
    // are promoted once ready, which can take a few seconds on a busy machine: wait for the
    // steady state (2 regular, 2 spare), then check it.
    type Status = { running: boolean; status: { completed: number; executors: Array<{ pid: number; tasksDone: number; role: string }> } };
    let parsed: Status | undefined;
    let roles: string[] = [];
    for (let i = 0; i < 30; i++) {
      const status = await runCli(["worker", "status", "--pid-file", pidFile, "--json"], env);
      assert.equal(status.code, 0, status.stderr);
      parsed = JSON.parse(status.stdout) as Status;
      roles = parsed.status.executors.map((e) => e.role);
      if (roles.filter((r) => r === "regular").length === 2 && roles.filter((r) => r === "spare").length === 2) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(parsed!.running, true);
    assert.equal(parsed!.status.completed, 30);
    assert.equal(roles.filter((r) => r === "regular").length, 2, `roles: ${roles.join(",")}`);
    assert.equal(roles.filter((r) => r === "spare").length, 2, `--spares 2 keeps two idle executors; roles: ${roles.join(",")}`);
    const text = await runCli(["worker", "status", "--pid-file", pidFile], env);
    assert.match(text.stdout, /running: pid \d+, running/);
    assert.match(text.stdout, /pid\s+tasks\s+rss\s+current/);
    const stats = await runCli(["stats", "--transport", url, "--pid-file", pidFile], env);
    assert.equal(stats.code, 0, stats.stderr);
    assert.match(stats.stdout, /worker pid \d+: running/);
    assert.match(stats.stdout, /executor\s+tasks\s+rss\s+current/);
    assert.match(stats.stdout, /cli-a\s+0\s+0\s+0\s+30/);
    const stopped = await runCli(["worker", "stop", "--pid-file", pidFile], env, 60_000);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /drained and stopped/);
    assert.equal(existsSync(pidFile), false, "the pid file is removed");
    const after = await runCli(["worker", "status", "--pid-file", pidFile], env);
    assert.equal(after.code, 1);
    assert.match(after.stderr, /NOT_FOUND/);
    await ferry.close();
  });

  it("refuses bad pool flags as usage errors", async () => {
    for (const args of [["--processes", "-1"], ["--max-memory", "lots"], ["--max-tasks", "0"], ["--spares", "-1"], ["--kill-grace", "soon"]]) {
      const r = await runCli(["worker", "--app", "tests/cli/fixtures/app.ts", ...args], env);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    }
    const noApp = await runCli(["worker"], env);
    assert.equal(noApp.code, 2);
    assert.match(noApp.stderr, /--app/);
  });
});
