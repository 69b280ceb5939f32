/** The example app (`npm start`), run once to the end as a child process. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { it } from "node:test";
import Database from "better-sqlite3";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function run(args: string[], env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

it("the shop plays registration fan-out, CRM retries, the delayed close and shipping", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ferry-shop-"));
  try {
    const { code, out, err } = await run(["examples/shop/main.ts", "--once"], { SHOP_DATA_DIR: dir, SHOP_CLOSE_DELAY: "1s" }, 90_000);
    assert.equal(code, 0, `${out}\n${err}`);
    const lines = out.split("\n");

    // Seed 003: a welcome mail per user, delivered to the local SMTP server through nodemailer.
    for (const name of ["Ada", "Bob", "Chen"]) {
      assert.match(out, new RegExp(`smtp\\s+delivered "Welcome, ${name}!" to ${name.toLowerCase()}@example.com`));
    }
    assert.equal(lines.filter((l) => /\[emails\]\s+email\.welcome .* completed:/.test(l)).length, 3);

    // Seed 000: the audit entry runs in the publisher (sync), once per event.
    assert.equal(lines.filter((l) => /\[sync\]\s+audit\.log .* completed:/.test(l)).length, 6);

    // Seed 003: the CRM fails half the time; each sync is retried, then succeeds.
    const crmRuns = lines.filter((l) => /crm\.sync/.test(l));
    const ids = new Set(crmRuns.map((l) => /#(\w{6})/.exec(l)![1]));
    assert.equal(ids.size, 3);
    for (const id of ids) {
      const mine = crmRuns.filter((l) => l.includes(`#${id}`));
      assert.equal(mine.length, 2, mine.join("\n"));
      assert.match(mine[0]!, /retrying: crm\.sync failed on attempt 1 of 6, will retry: CRM answered 503/);
      assert.match(mine[1]!, /completed: crm\.sync completed on attempt 2/);
    }
    assert.match(out, /crm\s+503 for ada@example.com/);
    assert.match(out, /crm\s+200 for ada@example.com/);

    // Seed 002: the unpaid order is closed after the delay; the paid one cancels its close and ships.
    const unpaid = /order (o-\w+) created for Ada/.exec(out)![1]!;
    const paid = /order (o-\w+) paid by Bob/.exec(out)![1]!;
    assert.match(out, new RegExp(`order\\.close-unpaid .*\\{"orderId":"${unpaid}"\\}.* completed:`));
    assert.match(out, new RegExp(`order\\.close-unpaid .*\\{"orderId":"${paid}"\\}.* cancelled: .*order ${paid} is (paid|shipped); nothing to close`));
    assert.match(out, new RegExp(`\\[orders\\]\\s+order\\.ship-virtual .*\\{"orderId":"${paid}"\\}.* completed:`));
    assert.match(out, new RegExp(`done: 3 mails delivered, 6 CRM calls \\(3 failed\\), order ${unpaid} closed, order ${paid} shipped, 6 audit entries`));

    // The close ran no earlier than its delay after the order was created (times from Ferry's own store).
    const queue = new Database(join(dir, "shop.db"), { readonly: true });
    const rows = queue.prepare(`SELECT json_extract(payload, '$.orderId') AS orderId, created_at, run_at, started_at, state FROM ferry_messages WHERE name = 'order.close-unpaid'`).all() as Array<{ orderId: string; created_at: number; run_at: number; started_at: number; state: string }>;
    queue.close();
    const close = rows.find((r) => r.orderId === unpaid)!;
    assert.equal(close.run_at - close.created_at, 1000);
    assert.ok(close.started_at >= close.run_at, "the close did not run early");
    assert.equal(close.state, "completed");

    // The user rows are in the shop's own database.
    const app = new Database(join(dir, "shop-app.db"), { readonly: true });
    const users = app.prepare(`SELECT email, crm_id FROM users ORDER BY email`).all();
    app.close();
    assert.deepEqual(users, [
      { email: "ada@example.com", crm_id: "crm-ada" },
      { email: "bob@example.com", crm_id: "crm-bob" },
      { email: "chen@example.com", crm_id: "crm-chen" },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
