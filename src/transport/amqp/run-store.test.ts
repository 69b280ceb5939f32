import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { createEnvelope, encodeEnvelope } from "../../core/envelope.ts";
import { RunStore } from "./run-store.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("amqp run store shared with another process", () => {
  const dir = mkdtempSync(join(tmpdir(), "ferry-run-store-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps outcomes it could not write while another connection held the file, reports it, and writes them later", async () => {
    const path = join(dir, "runs.db");
    const reports: Array<{ message: string; details?: Record<string, unknown> }> = [];
    const store = new RunStore(path, "ns", { busyTimeoutMs: 50, report: (message, details) => reports.push({ message, ...(details ? { details } : {}) }) });
    const messages = [0, 1, 2].map((n) => createEnvelope({ name: "t.run", channel: "c", payload: { n } }));
    store.insert(messages, messages.map(encodeEnvelope));
    store.started(messages.map((m) => ({ id: m.id, attempt: 1, startedAt: 1 })));

    // Another process (here: another connection) holds the write lock past the busy timeout.
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    store.finish([{ id: messages[0]!.id, state: "completed", attempt: 1, startedAt: 1, result: { ok: true } }], 10);
    store.finish([{ id: messages[1]!.id, state: "dead", attempt: 1, startedAt: 1, error: { code: "HANDLER_FAILED", message: "no", attempt: 1, at: 5 } }], 11);
    await sleep(200); // the deferred write waited its 50 ms for the lock and failed: nothing thrown out of the timer
    assert.ok(reports.length >= 1, "the failed write was reported");
    assert.equal(reports[0]!.details?.code, "SQLITE_BUSY");
    assert.match(reports[0]!.message, /kept, retried/);

    other.exec("COMMIT");
    other.close();
    await sleep(400); // the retry (200 ms) writes them
    const read = new Database(path, { readonly: true });
    const rows = read.prepare("SELECT id, state, result, errors FROM ferry_amqp_runs ORDER BY id").all() as Array<{ id: string; state: string; result: string | null; errors: string | null }>;
    read.close();
    const byId = new Map(rows.map((r) => [r.id, r]));
    assert.equal(byId.get(messages[0]!.id)?.state, "completed");
    assert.deepEqual(JSON.parse(byId.get(messages[0]!.id)!.result!), { ok: true });
    assert.equal(byId.get(messages[1]!.id)?.state, "dead");
    assert.equal(JSON.parse(byId.get(messages[1]!.id)!.errors!)[0].code, "HANDLER_FAILED");
    // The third lease had no outcome: the lease flush wrote it as active once the file was free.
    assert.equal(byId.get(messages[2]!.id)?.state, "active");
    await store.close();
  });

  it("throws a write failure to the caller on its own path and keeps the outcomes gathered before it", async () => {
    const path = join(dir, "runs-sync.db");
    const store = new RunStore(path, "ns", { busyTimeoutMs: 20 });
    const m = createEnvelope({ name: "t.run", channel: "c", payload: {} });
    store.insert([m], [encodeEnvelope(m)]);
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    store.finish([{ id: m.id, state: "completed", attempt: 1, startedAt: 1 }], 10);
    assert.throws(() => store.get(m.id), (err: Error & { code?: string }) => err.code === "SQLITE_BUSY");
    other.exec("ROLLBACK");
    other.close();
    assert.equal(store.get(m.id)?.state, "completed", "the outcome was kept and written by the next call");
    await store.close();
  });

  it("wait() waits for another process's write lock on timers, so the event loop runs, and the call goes through once the lock is gone", async () => {
    const path = join(dir, "runs-wait.db");
    const store = new RunStore(path, "ns", { busyTimeoutMs: 3000 });
    const m = createEnvelope({ name: "t.run", channel: "c", payload: {} });
    const other = new Database(path);
    try {
      other.exec("BEGIN IMMEDIATE");
      let late = Infinity;
      const at = performance.now();
      setTimeout(() => {
        late = performance.now() - at - 40;
        other.exec("COMMIT");
      }, 40);
      const receipts = await store.wait((s) => s.insert([m], [encodeEnvelope(m)]));
      // SQLite's own wait (the old behaviour) would have blocked the thread for the 3 s.
      assert.ok(late < 1500, `the release timer fired ${Math.round(late)} ms late: the event loop was blocked`);
      assert.deepEqual(receipts, [{ id: m.id, deduplicated: false }]);
      assert.equal((await store.wait((s) => s.get(m.id)))?.state, "waiting");

      // A write still waiting when the store closes fails with TRANSPORT_CLOSED, not a driver error.
      other.exec("BEGIN IMMEDIATE");
      const late2 = createEnvelope({ name: "t.run", channel: "c", payload: {} });
      const waiting = store.wait((s) => s.insert([late2], [encodeEnvelope(late2)]));
      await sleep(10);
      await store.close();
      await assert.rejects(waiting, (err: Error & { code?: string }) => err.code === "TRANSPORT_CLOSED");
      other.exec("ROLLBACK");
    } finally {
      other.close();
      await store.close();
    }
  });
  it("records ended leases from a timer or connection event without throwing, once the file is free", async () => {
    const path = join(dir, "runs-requeue.db");
    const reports: string[] = [];
    const store = new RunStore(path, "ns", { busyTimeoutMs: 20, report: (message) => reports.push(message) });
    const m = createEnvelope({ name: "t.run", channel: "c", payload: {} });
    store.insert([m], [encodeEnvelope(m)]);
    store.started([{ id: m.id, attempt: 1, startedAt: 1 }]);
    store.flush();
    assert.equal(store.get(m.id)?.state, "active");
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    assert.doesNotThrow(() => store.requeue([{ id: m.id, attempt: 1 }]));
    await sleep(100); // it waited its 20 ms for the lock, then reported
    assert.equal(reports.length, 1);
    assert.match(reports[0]!, /could not record 1 ended leases .*retried in 200 ms/);
    other.exec("ROLLBACK");
    other.close();
    await sleep(300);
    const record = store.get(m.id);
    assert.equal(record?.state, "waiting");
    assert.equal(record?.message.attempt, 1);
    await store.close();
  });

  it("retention keeps each channel's newest finished records by count, deletes past the age, and leaves other prefixes alone", async () => {
    const path = join(dir, "runs-retain.db");
    const store = new RunStore(path, "ns");
    const other = new RunStore(path, "other");
    const finish = (s: RunStore, channel: string, n: number, at: number) => {
      const ms = Array.from({ length: n }, (_, i) => createEnvelope({ name: "t.run", channel, payload: { i } }));
      s.insert(ms, ms.map(encodeEnvelope));
      s.finish(ms.map((m) => ({ id: m.id, state: "completed" as const, attempt: 1, startedAt: at })), at);
      s.flush();
      return ms.map((m) => m.id);
    };
    const a = finish(store, "a", 6, 1_000);
    const b = finish(store, "b", 2, 5_000);
    const kept = finish(other, "a", 4, 1_000);
    const listed = (s: RunStore, channel: string) => s.list({ state: "completed", channel, limit: 100 }).map((r) => r.message.id).sort();
    assert.equal(store.retain("completed", 2, null, 1000), 4, "a keeps its newest 2; b is under the count");
    assert.deepEqual(listed(store, "a"), a.slice(4).sort());
    assert.deepEqual(listed(store, "b"), b.sort());
    assert.equal(store.retain("completed", -1, 2_000, 1000), 2, "by age: a's rows finished at 1,000");
    assert.deepEqual(listed(store, "a"), []);
    assert.deepEqual(listed(store, "b"), b.sort());
    assert.equal(store.retain("completed", 2, 2_000, 1000), 0);
    assert.deepEqual(listed(other, "a"), kept.sort(), "another prefix's records are its own");
    await store.close();
    await other.close();
  });
});
