import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createFerry, createTransport, isInspectable, hasDeadLetterAdmin, type Transport } from "../../src/index.ts";
import { broken, ok, slow } from "./fixtures/app.ts";
import { ROOT, runCli, startCli, until } from "./run-cli.ts";

const APP = "tests/cli/fixtures/app.ts";
let dir: string;
let n = 0;

/** A fresh SQLite URL per test. */
function freshUrl(): string {
  return `sqlite://${join(dir, `t${n++}.db`)}`;
}

async function seed(url: string, what: { ok?: number; broken?: number; slowMs?: number }): Promise<string[]> {
  const ferry = createFerry({ transport: url, tasks: [ok, broken, slow] });
  const ids: string[] = [];
  for (let i = 0; i < (what.ok ?? 0); i++) ids.push((await ferry.dispatch(ok, { n: i })).id);
  for (let i = 0; i < (what.broken ?? 0); i++) ids.push((await ferry.dispatch(broken, { i })).id);
  if (what.slowMs !== undefined) ids.push((await ferry.dispatch(slow, { ms: what.slowMs })).id);
  await ferry.close();
  return ids;
}

/** Put `count` messages straight into the dead-letter store of channel cli-b. */
async function makeDead(url: string, count: number): Promise<string[]> {
  const ids = await seed(url, { broken: count });
  const t = await createTransport(url);
  const deliveries = await t.receive({ channels: ["cli-b"], max: count, leaseMs: 30_000, waitMs: 0 });
  assert.equal(deliveries.length, count);
  const results = await t.deadLetter(deliveries.map((d) => ({ id: d.message.id, token: d.token, error: { at: Date.now(), attempt: 1, code: "HANDLER_FAILED", message: "boom for the test" } })));
  assert.ok(results.every(Boolean));
  await t.close();
  return ids;
}

async function withTransport<T>(url: string, fn: (t: Transport) => Promise<T>): Promise<T> {
  const t = await createTransport(url);
  try {
    return await fn(t);
  } finally {
    await t.close();
  }
}

async function counts(url: string, channel: string) {
  return withTransport(url, async (t) => {
    assert.ok(isInspectable(t));
    return (await t.counts()).find((c) => c.channel === channel);
  });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "ferry-cli-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("ferry CLI", () => {
  it("prints --help for every command and exits 0", async () => {
    for (const args of [["--help"], ["stats", "--help"], ["dead", "discard", "--help"], ["migrate", "--help"], ["serve", "--help"]]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout, /^Usage: ferry/m, args.join(" "));
    }
    const worker = await runCli(["worker", "--help"]);
    assert.match(worker.stdout, /--channels <list>/);
    assert.match(worker.stdout, /--concurrency <n>/);
    assert.match(worker.stdout, /--lease <duration>/);
  });

  it("stats prints counts per channel and state, as a table or JSON", async () => {
    const url = freshUrl();
    await seed(url, { ok: 3, broken: 2 });
    await makeDead(url, 1);
    const table = await runCli(["stats", "--transport", url]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trim().split("\n");
    assert.deepEqual(lines[0]!.split(/\s+/), ["channel", "waiting", "delayed", "active", "completed", "cancelled", "dead"]);
    assert.deepEqual(lines.find((l) => l.startsWith("cli-a"))!.split(/\s+/), ["cli-a", "3", "0", "0", "0", "0", "0"]);
    assert.deepEqual(lines.find((l) => l.startsWith("cli-b"))!.split(/\s+/), ["cli-b", "2", "0", "0", "0", "0", "1"]);

    const json = await runCli(["stats", "--transport", url, "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const rows = JSON.parse(json.stdout) as Array<{ channel: string; waiting: number; dead: number }>;
    assert.equal(rows.find((r) => r.channel === "cli-b")?.dead, 1);

    // The same through the app module: FERRY_URL binds its default transport.
    const viaApp = await runCli(["stats", "--app", APP, "--json"], { FERRY_URL: url });
    assert.equal(viaApp.code, 0, viaApp.stderr);
    assert.equal((JSON.parse(viaApp.stdout) as Array<{ channel: string; waiting: number }>).find((r) => r.channel === "cli-a")?.waiting, 3);
  });

  it("dead list, replay and discard act on the dead-letter store", async () => {
    const url = freshUrl();
    const ids = await makeDead(url, 4);
    const list = await runCli(["dead", "list", "--transport", url]);
    assert.equal(list.code, 0, list.stderr);
    for (const id of ids) assert.ok(list.stdout.includes(id), `list shows ${id}`);
    assert.match(list.stdout, /HANDLER_FAILED: boom for the test/);

    const listed = await runCli(["dead", "list", "--transport", url, "--json", "--limit", "2"]);
    assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 2);

    const replay = await runCli(["dead", "replay", ids[0]!, ids[1]!, "--transport", url]);
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /replayed 2 messages/);
    await withTransport(url, async (t) => {
      assert.ok(isInspectable(t));
      assert.equal((await t.get(ids[0]!))?.state, "waiting");
      assert.equal((await t.get(ids[0]!))?.message.attempt, 0);
      assert.equal((await t.get(ids[2]!))?.state, "dead");
    });

    const again = await runCli(["dead", "replay", ids[0]!, "--transport", url]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`NOT_FOUND: not in the dead-letter store: ${ids[0]}`));

    const discard = await runCli(["dead", "discard", "--all", "--channel", "cli-b", "--transport", url]);
    assert.equal(discard.code, 0, discard.stderr);
    assert.match(discard.stdout, /discarded 2 messages/);
    assert.match(discard.stderr, /discard \[#+\] 2\/2 100%/);
    assert.equal((await counts(url, "cli-b"))?.dead, 0);
    await withTransport(url, async (t) => {
      assert.ok(hasDeadLetterAdmin(t) && isInspectable(t));
      assert.equal(await t.get(ids[2]!), null);
    });

    const bare = await runCli(["dead", "replay", "--transport", url]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /give message ids, or --all/);
  });

  it("replay --all moves every dead message back and shows progress", async () => {
    const url = freshUrl();
    await makeDead(url, 3);
    const r = await runCli(["dead", "replay", "--all", "--transport", url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /replayed 3 messages/);
    assert.match(r.stderr, /replay \[#{30}\] 3\/3 100%/);
    const c = await counts(url, "cli-b");
    assert.equal(c?.dead, 0);
    assert.equal(c?.waiting, 3);
  });

  it("worker runs tasks, prints a line per run, and drains on SIGTERM", async () => {
    const url = freshUrl();
    const [okId, , slowId] = await seed(url, { ok: 1, broken: 1, slowMs: 1500 });
    const worker = startCli(["worker", "--app", APP, "--concurrency", "4"], { FERRY_URL: url });
    try {
      await until(() => /completed\s+cli\.ok/.test(worker.stdout()) && /dead\s+cli\.broken/.test(worker.stdout()), "the quick runs");
      await until(async () => (await counts(url, "cli-a"))?.active === 1, "the slow task to be running");
      worker.child.kill("SIGTERM");
      const r = await worker.done;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`completed\\s+cli\\.ok\\s+${okId}\\s+attempt 1/3`));
      assert.match(r.stdout, /dead\s+cli\.broken\s+\S+\s+attempt 1\/3\s+\S+\s+UNRECOVERABLE: this payload can never work/);
      // The slow handler was running at SIGTERM: the drain let it finish instead of cutting it off.
      assert.match(r.stdout, new RegExp(`completed\\s+cli\\.slow\\s+${slowId}`));
      assert.match(r.stderr, /draining/);
      assert.match(r.stderr, /stopped after 2 completed and 1 failed runs/);
      const a = await counts(url, "cli-a");
      assert.equal(a?.completed, 2);
      assert.equal(a?.active, 0);
    } finally {
      worker.child.kill("SIGKILL");
    }
  });

  it("worker --quiet prints no run lines and --channels limits the channels", async () => {
    const url = freshUrl();
    await seed(url, { ok: 2, broken: 1 });
    const worker = startCli(["worker", "--app", APP, "--channels", "cli-a", "--quiet"], { FERRY_URL: url });
    try {
      await until(async () => (await counts(url, "cli-a"))?.completed === 2, "both cli-a runs");
      worker.child.kill("SIGINT");
      const r = await worker.done;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /channels cli-a,/);
      // cli-b was not taken from.
      assert.equal((await counts(url, "cli-b"))?.waiting, 1);
    } finally {
      worker.child.kill("SIGKILL");
    }
  });

  it("a bad flag or argument is a usage error: exit 2", async () => {
    const unknown = await runCli(["stats", "--bogus"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown option '--bogus'/);
    const badNumber = await runCli(["worker", "--app", APP, "--concurrency", "zero"]);
    assert.equal(badNumber.code, 2);
    assert.match(badNumber.stderr, /--concurrency <n>' argument 'zero' is invalid/);
    const badLease = await runCli(["worker", "--app", APP, "--lease", "forever"]);
    assert.equal(badLease.code, 2);
    assert.match(badLease.stderr, /--lease <duration>' argument 'forever' is invalid/);
    const missing = await runCli(["worker"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /required option '--app <path>' not specified/);
    const noCommand = await runCli(["frobnicate"]);
    assert.equal(noCommand.code, 2);
    assert.match(noCommand.stderr, /unknown command 'frobnicate'/);
  });

  it("a bad URL or an unreachable transport: FerryError code, exit 1, no stack unless --debug", async () => {
    const badUrl = await runCli(["stats", "--transport", "bogus://x"]);
    assert.equal(badUrl.code, 1);
    assert.match(badUrl.stderr, /^ferry: UNKNOWN_TRANSPORT: no transport for "bogus:"/);
    assert.doesNotMatch(badUrl.stderr, /\n\s+at /);

    const unparsable = await runCli(["stats", "--transport", "not a url"]);
    assert.equal(unparsable.code, 1);
    assert.match(unparsable.stderr, /^ferry: INVALID_URL: /);

    const file = join(dir, "plain-file");
    writeFileSync(file, "not a folder");
    const unreachable = await runCli(["stats", "--transport", `sqlite://${file}/x.db`]);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /^ferry: TRANSPORT_UNAVAILABLE: cannot open the SQLite file/);
    assert.doesNotMatch(unreachable.stderr, /\n\s+at /);

    const refused = await runCli(["stats", "--transport", "postgres://postgres@127.0.0.1:1/test"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /ferry: TRANSPORT_UNAVAILABLE: /);

    const debug = await runCli(["stats", "--transport", "bogus://x", "--debug"]);
    assert.equal(debug.code, 1);
    assert.match(debug.stderr, /UNKNOWN_TRANSPORT/);
    assert.match(debug.stderr, /\n\s+at /);
  });

  it("an app module that exports no Ferry: CONFIG_INVALID, exit 1", async () => {
    const r = await runCli(["worker", "--app", "tests/cli/fixtures/not-an-app.ts"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ferry: CONFIG_INVALID: tests\/cli\/fixtures\/not-an-app\.ts exports no Ferry/);
    const missing = await runCli(["stats", "--app", "tests/cli/fixtures/no-such-file.ts"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^ferry: CONFIG_INVALID: cannot load app module/);
  });

  it("migrate opens and prepares the store", async () => {
    const path = join(dir, "migrated.db");
    const r = await runCli(["migrate", "--transport", `sqlite://${path}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sqlite transport at .* is up to date/);
    assert.ok(existsSync(path));
    const stats = await runCli(["stats", "--transport", `sqlite://${path}`]);
    assert.equal(stats.stdout, "no messages\n");
  });

  it("serve starts the HTTP API when it exists, else says it is missing", async () => {
    const url = freshUrl();
    if (!existsSync(join(ROOT, "src/http/server.ts"))) {
      const r = await runCli(["serve", "--app", APP], { FERRY_URL: url });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^ferry: NOT_SUPPORTED: the HTTP API is not available/);
      return;
    }
    const server = startCli(["serve", "--app", APP, "--port", "0"], { FERRY_URL: url });
    try {
      await until(() => /listening on http/.test(server.stdout()) || server.child.exitCode !== null, "the server to listen");
      assert.match(server.stdout(), /listening on http/, server.stderr());
      server.child.kill("SIGTERM");
      const r = await server.done;
      assert.equal(r.code, 0, `signal ${r.signal}; stdout ${r.stdout}; stderr ${r.stderr}`);
    } finally {
      server.child.kill("SIGKILL");
    }
  });
});
