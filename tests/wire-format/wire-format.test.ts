/**
 * docs/wire-format.md, checked: the hand-written JSON and the SQL statement are
 * read from the document itself, inserted the documented way, and run by a worker.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { z } from "zod";
import { createFerry, createTransport, decodeEnvelope, defineTask, FerryError, isInspectable, type RunReport } from "../../src/index.ts";

const DOC = readFileSync(new URL("../../docs/wire-format.md", import.meta.url), "utf8");

/** The fenced block that follows `<!-- marker -->` in the document. */
function block(marker: string): string {
  const m = new RegExp(`<!-- ${marker} -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\\n\`\`\``).exec(DOC);
  assert.ok(m, `docs/wire-format.md has a block marked ${marker}`);
  return m[1]!;
}

const welcome = defineTask("email.welcome", {
  channel: "emails",
  schema: z.object({ email: z.string().email(), name: z.string().optional() }),
  run: ({ email, name }) => `welcome sent to ${name ?? "?"} <${email}>`,
});

let dir: string;
let n = 0;
before(() => (dir = mkdtempSync(join(tmpdir(), "ferry-wire-"))));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A Ferry with a running worker on a fresh SQLite file, collecting runs. */
async function startWorker(path: string) {
  const ferry = createFerry({ transport: `sqlite://${path}`, tasks: [welcome] });
  const runs: RunReport[] = [];
  ferry.events.on("run", (r) => runs.push(r));
  const worker = ferry.worker({ channels: ["emails"] });
  await worker.start();
  const waitFor = async (count: number) => {
    const deadline = Date.now() + 15_000;
    while (runs.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} runs, saw ${runs.length}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { ferry, runs, waitFor };
}

describe("wire format (docs/wire-format.md)", () => {
  it("a message written by hand, inserted with the documented SQL, is run by a waiting worker", async () => {
    const path = join(dir, `w${n++}.db`);
    const { ferry, runs, waitFor } = await startWorker(path); // opening the transport creates the schema
    const hand = JSON.parse(block("wire-example")) as Record<string, unknown>;
    const now = Date.now();
    const db = new Database(path);
    db.pragma("busy_timeout = 5000");
    assert.equal(db.pragma("user_version", { simple: true }), 2, "the documented layout is schema version 2");
    const insert = db.prepare(block("sqlite-insert"));
    const params = {
      id: "wire-test-0001",
      channel: hand.channel,
      name: hand.name,
      payload: JSON.stringify(hand.payload),
      headers: JSON.stringify(hand.headers),
      max_attempts: hand.maxAttempts,
      run_at: now,
      priority: hand.priority,
      dedup_key: null,
      created_at: now,
      now,
    };
    assert.equal(insert.run(params).changes, 1);
    assert.equal(insert.run(params).changes, 0, "inserting the same id again stores nothing");

    // A delayed one: due 300 ms later, so it goes in as 'delayed'.
    const later = { ...params, id: "wire-test-0002", run_at: now + 300, payload: JSON.stringify({ email: "bob@example.com", name: "Bob" }) };
    assert.equal(insert.run(later).changes, 1);
    db.close();

    await waitFor(2);
    const first = runs.find((r) => r.id === "wire-test-0001")!;
    assert.equal(first.status, "completed");
    assert.equal(first.task, "email.welcome");
    assert.equal(first.channel, "emails");
    assert.deepEqual(first.params, hand.payload);
    assert.equal(first.attempt, 1);
    assert.equal(first.maxAttempts, 5);
    assert.equal(first.result, "welcome sent to Ada <ada@example.com>");
    const second = runs.find((r) => r.id === "wire-test-0002")!;
    assert.equal(second.status, "completed");
    assert.ok(second.startedAt >= now + 300, "the delayed message did not run early");

    const t = await ferry.transport("emails");
    assert.ok(isInspectable(t));
    const record = await t.get("wire-test-0001");
    assert.equal(record?.message.headers.traceparent, (hand.headers as Record<string, string>).traceparent);
    assert.equal(record?.message.priority, 10);
    await ferry.close();
  });

  it("decodeEnvelope reads the same JSON, fills the defaults, and the transport delivers it", async () => {
    const text = block("wire-example");
    const before = Date.now();
    const envelope = decodeEnvelope(text);
    assert.equal(envelope.v, 1);
    assert.match(envelope.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    assert.equal(envelope.headers.correlationId, envelope.id, "correlationId defaults to the id");
    assert.equal(envelope.attempt, 0);
    assert.equal(envelope.maxAttempts, 5);
    assert.equal(envelope.priority, 10);
    assert.equal(envelope.dedupKey, null);
    assert.ok(envelope.runAt >= before && envelope.createdAt >= before, "runAt and createdAt default to now");

    const path = join(dir, `w${n++}.db`);
    const { ferry, runs, waitFor } = await startWorker(path);
    const transport = await createTransport(`sqlite://${path}`);
    const [receipt] = await transport.send([envelope]);
    assert.deepEqual(receipt, { id: envelope.id, deduplicated: false });
    await transport.close();
    await waitFor(1);
    assert.equal(runs[0]!.id, envelope.id);
    assert.equal(runs[0]!.status, "completed");
    assert.equal(runs[0]!.correlationId, envelope.id);
    await ferry.close();
  });

  it("refuses what the table says is invalid", () => {
    const hand = JSON.parse(block("wire-example")) as Record<string, unknown>;
    const bad = (patch: Record<string, unknown>, field: string) =>
      assert.throws(() => decodeEnvelope({ ...hand, ...patch }), (err: unknown) => err instanceof FerryError && (err.code === "INVALID_MESSAGE" || err.code === "INVALID_NAME") && err.message.includes(field));
    bad({ v: 2 }, "v");
    bad({ payload: undefined }, "payload");
    bad({ maxAttempts: 0 }, "maxAttempts");
    bad({ priority: 1001 }, "priority");
    bad({ headers: { traceparent: 5 } }, "headers.traceparent");
    bad({ id: "has spaces" }, "id");
    bad({ runAt: "next tuesday" }, "runAt");
    bad({ name: "bad name!" }, "task name");
    assert.throws(() => decodeEnvelope("{not json"), (err: unknown) => err instanceof FerryError && err.code === "INVALID_MESSAGE");
    const iso = decodeEnvelope({ ...hand, runAt: "2030-01-01T00:00:00Z" });
    assert.equal(iso.runAt, Date.UTC(2030, 0, 1), "ISO 8601 times are read as ms");
  });

  const examples: Array<{ marker: string; tool: string; run: (script: string) => [string, string[]] }> = [
    { marker: "sh-example", tool: "sqlite3", run: (script) => ["sh", ["-c", script]] },
    { marker: "python-example", tool: "python3", run: (script) => ["python3", ["-c", script]] },
  ];
  for (const { marker, tool, run } of examples) {
    const available = spawnSync(tool, ["--version"], { encoding: "utf8" }).status === 0;
    it(`the ${tool} example enqueues a message a worker runs`, { skip: available ? false : `${tool} is not installed` }, async () => {
      const cwd = join(dir, `ex${n++}`);
      mkdirSync(join(cwd, "data"), { recursive: true });
      const path = join(cwd, "data", "ferry.db");
      const { ferry, runs, waitFor } = await startWorker(path);
      const [cmd, cmdArgs] = run(block(marker));
      const out = spawnSync(cmd, cmdArgs, { cwd, encoding: "utf8" });
      assert.equal(out.status, 0, out.stderr);
      await waitFor(1);
      assert.equal(runs[0]!.status, "completed");
      assert.equal(runs[0]!.task, "email.welcome");
      assert.equal((runs[0]!.params as { email: string }).email, "ada@example.com");
      await ferry.close();
    });
  }
});
