/**
 * SQLite-specific behaviour beyond the conformance suite: URLs, durability
 * across reopen, pause/resume, migrations, dedup on replay, capped error
 * history, pruning, the receive query plan, and waiting on a virtual clock.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { VirtualClock } from "../../core/clock.ts";
import { createEnvelope, type EnvelopeInit } from "../../core/envelope.ts";
import { isFerryError } from "../../core/errors.ts";
import { createTransport } from "../registry.ts";
import { appendError, type AttemptError } from "../types.ts";
import { BACKSTOP_PAGES } from "./sqlite-checkpointer.ts";
import { RETAIN_SQL } from "./sqlite-admin.ts";
import { loadMigrations } from "./sqlite-schema.ts";
import { receiveSql } from "./sqlite-statements.ts";
import { SqliteTransport } from "./sqlite-transport.ts";
import { parseSqliteUrl } from "./sqlite-url.ts";

const dir = mkdtempSync(join(tmpdir(), "ferry-sqlite-features-"));
let files = 0;
const file = () => join(dir, `t-${files++}.db`);
const T0 = 1_700_000_000_000;
const msg = (channel: string, init: Partial<EnvelopeInit> = {}, now = T0) => createEnvelope({ name: "feature.task", channel, payload: { x: 1 }, ...init }, now);
const invalidUrl = (err: unknown) => isFerryError(err, "INVALID_URL");

describe("SQLite transport features", () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads every URL form", () => {
    assert.deepEqual(parseSqliteUrl(new URL("sqlite://./data/ferry.db")), { path: "./data/ferry.db" });
    assert.deepEqual(parseSqliteUrl(new URL("sqlite://data/ferry.db")), { path: "data/ferry.db" });
    assert.deepEqual(parseSqliteUrl(new URL("sqlite:///var/lib/app/ferry.db")), { path: "/var/lib/app/ferry.db" });
    assert.deepEqual(parseSqliteUrl(new URL("sqlite://./my%20data/f.db?synchronous=FULL&busyTimeout=250&recheck=5000&watch=false")), {
      path: "./my data/f.db",
      synchronous: "full",
      busyTimeoutMs: 250,
      recheckMs: 5000,
      watch: false,
    });
    assert.deepEqual(parseSqliteUrl(new URL("sqlite://./f.db?completedCount=0&deadAge=none&watch=false")), {
      path: "./f.db",
      watch: false,
      retention: { completed: { count: 0 }, dead: { age: Infinity } },
    });
    for (const bad of ["sqlite://", "sqlite://./data/", "sqlite://./f.db?synchronous=fast", "sqlite://./f.db?bogus=1", "sqlite://./f.db?completedCount=-1", "sqlite://./f.db?deadAge=later", "sqlite://./f.db?busyTimeout=-5", "sqlite://./f.db?watch=yes", "sqlite://./%E0%A4%A.db"]) {
      assert.throws(() => parseSqliteUrl(new URL(bad)), invalidUrl, bad);
    }
  });

  it("checkpoints the WAL on a background thread, not inside a send", async () => {
    const path = file();
    const t = new SqliteTransport({ path });
    try {
      const db = new Database(path, { readonly: true });
      const pages = () => statSync(path).size / (db.pragma("page_size", { simple: true }) as number);
      const before = pages();
      // ~4 WAL frames per single send: well under the backstop, so SQLite itself never checkpoints here
      for (let i = 0; i < 500; i++) await t.send([msg("ckpt", {}, T0 + i)]);
      assert.ok(500 * 4 < BACKSTOP_PAGES);
      const deadline = Date.now() + 10_000;
      while (pages() <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(pages() > before, `the database file grew from ${before} pages: the thread copied the WAL back`);
      assert.equal((db.prepare("SELECT count(*) FROM ferry_messages WHERE channel = 'ckpt'").pluck().get() as number), 500);
      db.close();
    } finally {
      await t.close();
    }
  });

  it("close() returns once the checkpoint thread has let go of the file too", async () => {
    // The thread holds its own connection; closing the last connection to a WAL database
    // removes its -wal file. Before close() waited for the thread, the file was still there
    // (and the thread still writing) when close() returned, so deleting the directory right
    // after could fail.
    for (let round = 0; round < 3; round++) {
      const path = file();
      const t = new SqliteTransport({ path });
      // Enough in the WAL that the thread's last checkpoint takes a while.
      await t.send(Array.from({ length: 20_000 }, (_, i) => msg("bye", { payload: { i, pad: "x".repeat(200) } })));
      assert.ok(existsSync(`${path}-wal`), "a WAL while open");
      await t.close();
      assert.equal(existsSync(`${path}-wal`), false, `round ${round}: no connection left on the file`);
    }
  });

  it("opens through the registry and creates the parent folder", async () => {
    const path = join(dir, "nested", "deeper", "ferry.db");
    const t = await createTransport(`sqlite://${path}?synchronous=full`);
    try {
      assert.equal(t.kind, "sqlite");
      assert.ok(t instanceof SqliteTransport);
      assert.ok(existsSync(path));
      await assert.rejects(createTransport("sqlite://./x.db?synchronous=sometimes"), invalidUrl);
    } finally {
      await t.close();
    }
  });

  it("numbers its schema with user_version and refuses a newer file", async () => {
    const path = file();
    await new SqliteTransport({ path }).close();
    await new SqliteTransport({ path }).close(); // migrating twice is a no-op
    const db = new Database(path);
    assert.equal(db.pragma("user_version", { simple: true }), loadMigrations().length);
    assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
    db.pragma("user_version = 999");
    db.close();
    assert.throws(() => new SqliteTransport({ path }), (err: unknown) => isFerryError(err, "TRANSPORT_UNAVAILABLE"));
    assert.throws(() => new SqliteTransport({ path: "" }), (err: unknown) => isFerryError(err, "INVALID_OPTION"));
  });

  it("keeps delayed messages and live leases across a restart", async () => {
    const path = file();
    const clock = new VirtualClock(T0);
    const a = new SqliteTransport({ path, clock });
    const delayed = msg("restart", { runAt: T0 + 5000 });
    const now = msg("restart");
    await a.send([delayed, now]);
    const [leased] = await a.receive({ channels: ["restart"], max: 5, leaseMs: 10_000, waitMs: 0 });
    assert.equal(leased?.message.id, now.id);
    await a.close();

    const b = new SqliteTransport({ path, clock });
    try {
      assert.deepEqual(await b.receive({ channels: ["restart"], max: 5, leaseMs: 10_000, waitMs: 0 }), [], "nothing due yet, the lease still holds");
      await clock.advance(5000);
      const [d] = await b.receive({ channels: ["restart"], max: 5, leaseMs: 10_000, waitMs: 0 });
      assert.equal(d?.message.id, delayed.id);
      assert.deepEqual(await b.ack([{ id: now.id, token: leased!.token }]), [true], "a lease taken before the restart is still honoured");
    } finally {
      await b.close();
    }
  });

  it("a receive waiting on a virtual clock wakes at the next due time, with no real timer", async () => {
    const clock = new VirtualClock(T0);
    const t = new SqliteTransport({ path: file(), clock });
    try {
      const m = msg("virtual", { runAt: T0 + 30_000 });
      await t.send([m]);
      const pending = t.receive({ channels: ["virtual"], max: 1, leaseMs: 1000, waitMs: 60_000 });
      await new Promise((r) => setImmediate(r));
      assert.equal(clock.pendingSleepers, 1, "the receive sleeps on the clock");
      await clock.advance(29_999);
      await clock.advance(1);
      const [d] = await pending;
      assert.equal(d?.message.id, m.id);
      assert.equal(clock.now(), T0 + 30_000);
      assert.equal(clock.pendingSleepers, 0);
    } finally {
      await t.close();
    }
  });

  it("a paused channel delivers nothing until resumed, and resume wakes a waiting receive", async () => {
    const path = file();
    const t = new SqliteTransport({ path });
    const other = new SqliteTransport({ path });
    try {
      await t.send([msg("paused-a", {}, Date.now()), msg("paused-b", {}, Date.now())]);
      await other.pause("paused-a");
      await other.pause("paused-a");
      assert.deepEqual(await t.paused(), ["paused-a"]);
      const got = await t.receive({ channels: ["paused-a", "paused-b"], max: 5, leaseMs: 10_000, waitMs: 0 });
      assert.deepEqual(got.map((d) => d.message.channel), ["paused-b"]);
      const pending = t.receive({ channels: ["paused-a"], max: 5, leaseMs: 10_000, waitMs: 20_000 });
      await new Promise((r) => setTimeout(r, 50));
      await other.resume("paused-a");
      const started = Date.now();
      assert.equal((await pending).length, 1);
      assert.ok(Date.now() - started < 10_000, "resumed without waiting out the receive");
      assert.deepEqual(await t.paused(), []);
      await assert.rejects(t.pause("bad channel!"), (err: unknown) => isFerryError(err, "INVALID_NAME"));
    } finally {
      await t.close();
      await other.close();
    }
  });

  it("a replayed message whose dedupKey is held by a live one does not take the key", async () => {
    const t = new SqliteTransport({ path: file() });
    try {
      const now = Date.now();
      const first = msg("dedup-replay", { dedupKey: "k" }, now);
      await t.send([first]);
      const [d] = await t.receive({ channels: ["dedup-replay"], max: 1, leaseMs: 10_000, waitMs: 0 });
      await t.deadLetter([{ id: first.id, token: d!.token, error: { at: now, attempt: 1, code: "X", message: "x" } }]);
      const second = msg("dedup-replay", { dedupKey: "k" }, now);
      assert.deepEqual(await t.send([second]), [{ id: second.id, deduplicated: false }], "a dead message frees its key");
      assert.deepEqual(await t.replay([first.id]), [first.id]);
      assert.deepEqual(await t.send([msg("dedup-replay", { dedupKey: "k" }, now)]), [{ id: second.id, deduplicated: true }], "the live holder keeps the key");
      const got = await t.receive({ channels: ["dedup-replay"], max: 5, leaseMs: 10_000, waitMs: 0 });
      assert.deepEqual(got.map((x) => x.message.id).sort(), [first.id, second.id].sort());
      assert.equal((await t.get(first.id))?.message.dedupKey, "k", "the envelope is unchanged");
    } finally {
      await t.close();
    }
  });

  it("keeps a capped error history: the first and the newest", async () => {
    const t = new SqliteTransport({ path: file() });
    try {
      const m = msg("errors", {}, Date.now());
      await t.send([m]);
      let expected: AttemptError[] = [];
      for (let i = 1; i <= 14; i++) {
        const [d] = await t.receive({ channels: ["errors"], max: 1, leaseMs: 10_000, waitMs: 0 });
        const error: AttemptError = { at: 1000 + i, attempt: i, code: "HANDLER_FAILED", message: `failure ${i} "quoted" é 🚀` };
        expected = appendError(expected, error);
        assert.deepEqual(await t.retry([{ id: m.id, token: d!.token, runAt: 0, attemptUsed: true, error }]), [true]);
      }
      const rec = await t.get(m.id);
      assert.deepEqual(rec?.errors, expected);
      assert.equal(rec?.errors.length, 10);
      assert.equal(rec?.message.attempt, 14);
    } finally {
      await t.close();
    }
  });

  it("prunes finished messages only", async () => {
    const clock = new VirtualClock(T0);
    const t = new SqliteTransport({ path: file(), clock });
    try {
      const [a, b, c] = [msg("prune"), msg("prune"), msg("prune")];
      await t.send([a!, b!, c!]);
      const got = await t.receive({ channels: ["prune"], max: 2, leaseMs: 10_000, waitMs: 0 });
      await t.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
      await clock.advance(1000);
      assert.equal(await t.prune({ before: T0 }), 0, "finished at T0, not before it");
      assert.equal(await t.prune({ before: T0 + 1, states: ["waiting", "active"] }), 0, "live states are never pruned");
      assert.equal(await t.prune({ before: T0 + 1 }), 2);
      assert.equal((await t.counts()).find((x) => x.channel === "prune")?.waiting, 1);
    } finally {
      await t.close();
    }
  });

  it("retention keeps the newest finished rows per channel by count, deletes past the age, and runs in the background", async () => {
    const clock = new VirtualClock(T0);
    const t = new SqliteTransport({ path: file(), clock, retention: { completed: { count: 3, age: "1h" }, dead: { count: 1 } } });
    try {
      const finish = async (channel: string, n: number) => {
        const sent = Array.from({ length: n }, () => msg(channel, {}, clock.now()));
        for (const m of sent) await t.send([m]);
        const got = await t.receive({ channels: [channel], max: n, leaseMs: 10_000, waitMs: 0 });
        assert.ok((await t.ack(got.map((d) => ({ id: d.message.id, token: d.token })))).every(Boolean));
        return sent.map((m) => m.id);
      };
      const listed = async (state: "completed" | "dead", channel: string) => (await t.list({ state, channel, limit: 100 })).map((r) => r.message.id).sort();
      const a = await finish("ret-a", 7);
      await clock.advance(2 * 3_600_000);
      const b = await finish("ret-b", 2);
      const doomed = [msg("ret-a", {}, clock.now()), msg("ret-a", {}, clock.now())];
      for (const m of doomed) await t.send([m]);
      const leased = await t.receive({ channels: ["ret-a"], max: 2, leaseMs: 10_000, waitMs: 0 });
      await t.deadLetter(leased.map((d) => ({ id: d.message.id, token: d.token, error: { at: clock.now(), attempt: 1, code: "E", message: "no" } })));
      // ret-a's completed rows are two hours old: all go by age; ret-b's are new and under the count.
      assert.equal(await t.enforceRetention(), 7 + 1);
      assert.deepEqual(await listed("completed", "ret-a"), []);
      assert.deepEqual(await listed("completed", "ret-b"), b.sort());
      assert.deepEqual(await listed("dead", "ret-a"), [doomed[1]!.id]);
      assert.equal(a.length, 7);
      // By count, in the background (about once a second after an ack).
      const c = await finish("ret-b", 4);
      const deadline = Date.now() + 15_000;
      while ((await listed("completed", "ret-b")).length > 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(await listed("completed", "ret-b"), c.slice(1).sort(), "the newest 3");
    } finally {
      await t.close();
    }
    assert.throws(() => new SqliteTransport({ path: file(), retention: { completed: { count: -1 } } }), (err: unknown) => isFerryError(err, "INVALID_OPTION"));
  });

  it("a completed rule that keeps nothing deletes each row as it is acked, fenced as before", async () => {
    const clock = new VirtualClock(T0);
    const t = new SqliteTransport({ path: file(), clock, retention: { completed: { count: 0 } } });
    try {
      const [a, b, c] = [msg("keep0"), msg("keep0"), msg("keep0")];
      await t.send([a!, b!, c!]);
      const got = await t.receive({ channels: ["keep0"], max: 3, leaseMs: 10_000, waitMs: 0 });
      const lease = (id: string) => got.find((d) => d.message.id === id)!.token;
      assert.deepEqual(await t.ack([{ id: a!.id, token: `${lease(a!.id)}x` }]), [false], "a stale token is refused");
      assert.deepEqual(await t.ack([{ id: a!.id, token: lease(a!.id), result: { ok: 1 } }, { id: b!.id, token: lease(b!.id), status: "cancelled" }]), [true, true]);
      assert.equal(await t.get(a!.id), null);
      assert.equal(await t.get(b!.id), null);
      assert.deepEqual(await t.ack([{ id: a!.id, token: lease(a!.id) }]), [false], "acked once");
      await t.deadLetter([{ id: c!.id, token: lease(c!.id), error: { at: clock.now(), attempt: 1, code: "E", message: "no" } }]);
      assert.equal((await t.get(c!.id))?.state, "dead", "dead rows keep their own rule");
    } finally {
      await t.close();
    }
  });

  it("retention reads the finished index, never the table", async () => {
    const path = file();
    await new SqliteTransport({ path }).close();
    const db = new Database(path);
    try {
      const params = { state: "completed", ch: "a", count: 10, batch: 100, last: 5, before: 7 };
      for (const sql of Object.values(RETAIN_SQL)) {
        const stmt = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
        const names = [...sql.matchAll(/@(\w+)/g)].map((m) => m[1]!);
        const detail = (stmt.all(Object.fromEntries(names.map((n) => [n, params[n as keyof typeof params]]))) as Array<{ detail: string }>).map((r) => r.detail).join(" | ");
        assert.match(detail, /INDEX ferry_messages_finished/, sql);
        assert.doesNotMatch(detail, /SCAN ferry_messages|TEMP B-TREE/, sql);
      }
    } finally {
      db.close();
    }
  });

  it("a write lock held past busyTimeoutMs fails with TRANSPORT_UNAVAILABLE, not a driver error", async () => {
    const path = file();
    const t = new SqliteTransport({ path, busyTimeoutMs: 50 });
    const other = new Database(path);
    try {
      other.exec("BEGIN IMMEDIATE");
      await assert.rejects(t.send([msg("busy", {}, Date.now())]), (err: unknown) => isFerryError(err, "TRANSPORT_UNAVAILABLE") && /SQLITE_BUSY/.test((err as Error).message));
      other.exec("ROLLBACK");
      assert.deepEqual((await t.send([msg("busy", {}, Date.now())])).length, 1, "works again once the lock is released");
    } finally {
      other.close();
      await t.close();
    }
  });

  it("a call that meets another process's write lock waits on timers: the event loop runs, and the call goes through once the lock is gone", async () => {
    const path = file();
    const t = new SqliteTransport({ path, busyTimeoutMs: 3000 });
    // Another connection stands for another process. Were the wait inside SQLite, as it used
    // to be, it would block this thread for busyTimeoutMs: the timer that releases the lock
    // would fire seconds late.
    const other = new Database(path);
    const holdFor = async <T>(ms: number, call: () => Promise<T>): Promise<{ value: T; releasedFirst: boolean }> => {
      other.exec("BEGIN IMMEDIATE");
      let released = false;
      let late = 0;
      const at = performance.now();
      setTimeout(() => {
        released = true;
        late = performance.now() - at - ms;
        other.exec("COMMIT");
      }, ms);
      const value = await call();
      assert.ok(late < 1500, `the event loop was blocked while the call waited: the release timer fired ${Math.round(late)} ms late`);
      return { value, releasedFirst: released };
    };
    try {
      const now = Date.now();
      const sent = await holdFor(60, () => t.send([msg("locked", {}, now)]));
      assert.equal(sent.releasedFirst, true, "the send went through only after the lock was released");
      assert.equal(sent.value.length, 1);
      const got = await holdFor(40, () => t.receive({ channels: ["locked"], max: 5, leaseMs: 30_000, waitMs: 0 }));
      assert.equal(got.releasedFirst, true);
      assert.deepEqual(got.value.map((d) => d.message.id), [sent.value[0]!.id], "the receive that waited for the lock leased the message");
      const acked = await holdFor(40, () => t.ack([{ id: got.value[0]!.message.id, token: got.value[0]!.token }]));
      assert.deepEqual(acked.value, [true]);
      const paused = await holdFor(40, () => t.pause("locked"));
      assert.equal(paused.releasedFirst, true);
      assert.deepEqual(await t.paused(), ["locked"]);
      assert.equal((await t.get(sent.value[0]!.id))?.state, "completed", "nothing was lost or done twice while waiting");
    } finally {
      other.close();
      await t.close();
    }
  });

  it("a call waiting for another process's write lock fails with TRANSPORT_CLOSED when the transport closes meanwhile", async () => {
    const path = file();
    const t = new SqliteTransport({ path });
    const other = new Database(path);
    try {
      other.exec("BEGIN IMMEDIATE");
      const sending = t.send([msg("closing", {}, Date.now())]);
      setTimeout(() => void t.close(), 20);
      await assert.rejects(sending, (err: unknown) => isFerryError(err, "TRANSPORT_CLOSED"));
      other.exec("ROLLBACK");
    } finally {
      other.close();
      await t.close();
    }
  });

  it("a receive that finds nothing writes nothing, so idle processes never wake each other", async () => {
    const path = file();
    const t = new SqliteTransport({ path });
    try {
      const now = Date.now();
      await t.send([msg("idle", { runAt: now + 60_000 }, now)]);
      const db = new Database(path);
      const frames = () => (db.pragma("wal_checkpoint(PASSIVE)") as { log: number }[])[0]!.log;
      const before = frames();
      for (let i = 0; i < 5; i++) assert.deepEqual(await t.receive({ channels: ["idle", "idle-2"], max: 10, leaseMs: 1000, waitMs: 0 }), []);
      assert.equal(frames(), before, "no WAL frames were written");
      db.close();
    } finally {
      await t.close();
    }
  });

  it("orders one receive over several channels by priority, then due time", async () => {
    const t = new SqliteTransport({ path: file() });
    try {
      const now = Date.now();
      const sent = [msg("x1", { priority: 1, runAt: now - 10 }, now), msg("x2", { priority: 5, runAt: now - 5 }, now), msg("x3", { priority: 1, runAt: now - 20 }, now), msg("x1", { priority: 0 }, now)];
      await t.send(sent);
      const got = await t.receive({ channels: ["x1", "x2", "x3"], max: 3, leaseMs: 10_000, waitMs: 0 });
      assert.deepEqual(got.map((d) => d.message.id), [sent[1]!.id, sent[2]!.id, sent[0]!.id]);
    } finally {
      await t.close();
    }
  });

  it("receives through the index in delivery order, without sorting the backlog", () => {
    const db = new Database(":memory:");
    try {
      db.exec(loadMigrations()[0]!.sql);
      for (const n of [1, 3]) {
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${receiveSql(n)}`).all(...Array(3 + n * 3 + (n > 1 ? 1 : 0)).fill(1)) as { detail: string }[]).map((r) => r.detail);
        const searches = plan.filter((d) => d.includes("USING INDEX ferry_messages_receive (channel=?)"));
        assert.equal(searches.length, n, `each channel is read from the receive index: ${plan.join(" | ")}`);
        assert.ok(!plan.some((d) => /SCAN ferry_messages\b/.test(d)), `no full table scan: ${plan.join(" | ")}`);
        // Only the merge of at most n x max candidates may be sorted.
        assert.equal(plan.filter((d) => d.includes("TEMP B-TREE")).length, n > 1 ? 1 : 0, plan.join(" | "));
      }
    } finally {
      db.close();
    }
  });
});
