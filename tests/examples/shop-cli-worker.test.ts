/**
 * The shop's app module is usable by the CLI: `ferry worker --app examples/shop/app.ts`
 * in a child process runs what this process publishes into the shared SQLite file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { startCrm, startSmtp } from "../../examples/shop/services.ts";
import { startCli, until } from "../cli/run-cli.ts";

it("ferry worker --app examples/shop/app.ts runs the shop's tasks", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ferry-shop-cli-"));
  const smtp = await startSmtp();
  const crm = await startCrm();
  const env = { SHOP_DATA_DIR: dir, SHOP_SMTP_PORT: String(smtp.port), SHOP_CRM_URL: crm.url };
  Object.assign(process.env, env);
  const shop = await import("../../examples/shop/app.ts");
  const worker = startCli(["worker", "--app", "examples/shop/app.ts", "--channels", "emails,integrations"], env);
  try {
    await shop.registerUser("dee@example.com", "Dee");
    await until(() => smtp.mails.length === 1 && crm.calls.length === 2 && /completed\s+crm\.sync/.test(worker.stdout()), "the mail and the CRM sync", 30_000);
    assert.deepEqual(smtp.mails[0]!.to, ["dee@example.com"]);
    assert.match(smtp.mails[0]!.raw, /Subject: Welcome, Dee!/);
    assert.deepEqual(crm.calls.map((c) => c.status), [503, 200]);
    assert.match(worker.stdout(), /retrying\s+crm\.sync\s+\S+\s+attempt 1\/6/);
    assert.match(worker.stdout(), /completed\s+crm\.sync\s+\S+\s+attempt 2\/6/);
    assert.match(worker.stdout(), /completed\s+email\.welcome\s+\S+\s+attempt 1\/5/);
    worker.child.kill("SIGTERM");
    const r = await worker.done;
    assert.equal(r.code, 0, r.stderr);
  } finally {
    worker.child.kill("SIGKILL");
    await shop.ferry.close();
    shop.closeShop();
    await Promise.all([smtp.close(), crm.close()]);
    for (const k of Object.keys(env)) delete process.env[k];
    rmSync(dir, { recursive: true, force: true });
  }
});
