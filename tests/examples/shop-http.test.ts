/**
 * The README's curl flow against `npm start`'s shop: a sign-up over HTTP answers
 * 202 at once, and its result arrives by server-sent events.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { it } from "node:test";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

it("npm start's shop takes a sign-up over HTTP and streams its result", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ferry-shop-http-"));
  const token = "readme-token-0123456789abcdef";
  const child = spawn(process.execPath, ["--import", "tsx", "examples/shop/main.ts"], {
    cwd: ROOT,
    env: { ...process.env, FERRY_TOKEN: token, PORT: "0", SHOP_DATA_DIR: dir, SHOP_CLOSE_DELAY: "1s" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
  try {
    let url: string | undefined;
    for (let i = 0; i < 600 && !url; i++) {
      url = /HTTP API on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      if (!url) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(url, `the shop printed its HTTP address:\n${out}`);
    const auth = { Authorization: `Bearer ${token}` };
    const unauth = await fetch(`${url}/v1/tasks/user.register`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    assert.equal(unauth.status, 401);
    const res = await fetch(`${url}/v1/tasks/user.register`, { method: "POST", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify({ payload: { email: "dee@example.com", name: "Dee" } }) });
    assert.equal(res.status, 202);
    const accepted = (await res.json()) as { id: string; eventsUrl: string };
    const stream = await fetch(`${url}${accepted.eventsUrl}`, { headers: auth });
    assert.equal(stream.headers.get("content-type")?.startsWith("text/event-stream"), true);
    const text = await stream.text();
    assert.match(text, /"state":"completed"/);
    assert.match(text, /"result":\{"userId":"[0-9a-f-]{36}"\}/);
    for (let i = 0; i < 100 && !out.includes("Welcome, Dee!"); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /delivered "Welcome, Dee!" to dee@example.com/, "the sign-up fanned out to the welcome mail");
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("close", r));
    rmSync(dir, { recursive: true, force: true });
  }
});
