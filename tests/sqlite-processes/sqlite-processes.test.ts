/**
 * Several worker processes on one SQLite file: every message is received
 * exactly once while no lease expires, a commit in one process wakes a
 * receive waiting in another (without the safety re-check), and a process
 * killed with SIGKILL loses nothing: its leases come back, its committed sends
 * are all there, and the file stays sound.
 */
import assert from "node:assert/strict";
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { createEnvelope } from "../../src/core/envelope.ts";
import { SqliteTransport } from "../../src/transport/sqlite/sqlite-transport.ts";

const CHILD = new URL("./sqlite-child.ts", import.meta.url);
const dir = mkdtempSync(join(tmpdir(), "ferry-sqlite-processes-"));
const children = new Set<ChildProcess>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Report {
  type: string;
  ids?: string[];
  attempts?: number[];
  id?: string;
}

function start(path: string, mode: "drain" | "send" | "hold" | "produce", channel: string, onReport: (r: Report) => void): Promise<ChildProcess> {
  const child = fork(CHILD, [path, mode, channel], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`child exited early with code ${code}`)));
    child.on("message", (r: Report) => {
      if (r.type === "ready") resolve(child);
      else onReport(r);
    });
  });
}

async function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = once(child, "exit");
  child.send({ type: "stop" });
  const [code] = await exited;
  return code as number | null;
}

async function until(what: string, done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("SQLite: several processes on one file", () => {
  after(async () => {
    for (const c of children) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("two worker processes drain one file: every message received exactly once", { timeout: 60_000 }, async () => {
    const path = join(dir, "drain.db");
    const channel = "drain";
    const producer = new SqliteTransport({ path });
    const seen = new Map<string, number>();
    const byChild = new Map<number, number>();
    let firstAttemptsOnly = true;
    try {
      const workers = await Promise.all(
        [0, 1].map((i) =>
          start(path, "drain", channel, (r) => {
            if (r.type !== "got") return;
            for (const id of r.ids!) seen.set(id, (seen.get(id) ?? 0) + 1);
            if (r.attempts!.some((a) => a !== 1)) firstAttemptsOnly = false;
            byChild.set(i, (byChild.get(i) ?? 0) + r.ids!.length);
          }),
        ),
      );
      // Sent in small batches while both workers wait, so both wake and compete.
      const sent: string[] = [];
      for (let b = 0; b < 40; b++) {
        const batch = Array.from({ length: 50 }, (_, i) => createEnvelope({ name: "processes.task", channel, payload: { b, i } }));
        await producer.send(batch);
        sent.push(...batch.map((m) => m.id));
        await sleep(5);
      }
      await until("every message to be received", () => [...seen.values()].reduce((a, n) => a + n, 0) >= sent.length, 30_000);
      await sleep(100); // a duplicate delivery, if any, would arrive now
      const codes = await Promise.all(workers.map(stopChild));
      assert.deepEqual(codes, [0, 0], "both workers exit cleanly");

      assert.equal(seen.size, sent.length, "every message was received");
      assert.deepEqual([...new Set(seen.values())], [1], "no message was received twice");
      assert.ok(sent.every((id) => seen.has(id)), "only sent messages were received");
      assert.ok(firstAttemptsOnly, "no message needed a second attempt");
      assert.ok((byChild.get(0) ?? 0) > 0 && (byChild.get(1) ?? 0) > 0, `both processes took work: ${JSON.stringify([...byChild])}`);
      const counts = (await producer.counts()).find((c) => c.channel === channel);
      assert.deepEqual(counts, { channel, waiting: 0, delayed: 0, active: 0, completed: sent.length, cancelled: 0, dead: 0 });
    } finally {
      await producer.close();
    }
  });

  it("a commit in another process wakes a waiting receive", { timeout: 60_000 }, async () => {
    const path = join(dir, "wake.db");
    const channel = "wake";
    // The re-check is a minute and the wait 40 s: only the file watch can end this receive early.
    const consumer = new SqliteTransport({ path, recheckMs: 60_000 });
    let sentId: string | undefined;
    const sender = await start(path, "send", channel, (r) => {
      if (r.type === "sent") sentId = r.id;
    });
    try {
      const started = Date.now();
      const pending = consumer.receive({ channels: [channel], max: 1, leaseMs: 30_000, waitMs: 40_000 });
      await sleep(200);
      sender.send({ type: "send" });
      const got = await pending;
      const waited = Date.now() - started;
      await until("the sender's report", () => sentId !== undefined, 5000);
      assert.equal(got.length, 1);
      assert.equal(got[0]!.message.id, sentId);
      assert.ok(waited < 20_000, `the receive returned with the work (after ${waited} ms), not at the end of its 40 s wait`);
      assert.equal(await stopChild(sender), 0);
    } finally {
      await consumer.close();
    }
  });

  it("a worker killed with SIGKILL holding leases: every message comes back once its lease ends", { timeout: 60_000 }, async () => {
    const path = join(dir, "killed-worker.db");
    const channel = "killed";
    const t = new SqliteTransport({ path });
    try {
      const sent = Array.from({ length: 30 }, (_, i) => createEnvelope({ name: "processes.task", channel, payload: { i } }));
      await t.send(sent);
      let held: string[] = [];
      const worker = await start(path, "hold", channel, (r) => {
        if (r.type === "held") held = r.ids!;
      });
      await until("the worker to lease the messages", () => held.length > 0, 20_000);
      assert.deepEqual([...held].sort(), sent.map((m) => m.id).sort());
      const exited = once(worker, "exit");
      worker.kill("SIGKILL");
      await exited;
      assert.deepEqual(await t.receive({ channels: [channel], max: 100, leaseMs: 30_000, waitMs: 0 }), [], "the leases still hold right after the kill");
      const back: string[] = [];
      const deadline = Date.now() + 15_000;
      while (back.length < sent.length && Date.now() < deadline) {
        const got = await t.receive({ channels: [channel], max: 100, leaseMs: 30_000, waitMs: 5000 });
        for (const d of got) assert.equal(d.message.attempt, 2, "the killed delivery counted as an attempt");
        back.push(...got.map((d) => d.message.id));
      }
      assert.deepEqual(back.sort(), sent.map((m) => m.id).sort(), "every message came back exactly once");
    } finally {
      await t.close();
    }
  });

  it("a producer killed with SIGKILL mid-stream: every committed send is stored and the file is sound", { timeout: 60_000 }, async () => {
    const path = join(dir, "killed-producer.db");
    const channel = "produced";
    const committed: string[] = [];
    const producer = await start(path, "produce", channel, (r) => {
      if (r.type === "sent") committed.push(...r.ids!);
    });
    await until("a few committed batches", () => committed.length >= 400, 20_000);
    const exited = once(producer, "exit");
    producer.kill("SIGKILL");
    await exited;
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
      const stored = new Set(db.prepare("SELECT id FROM ferry_messages WHERE channel = ?").pluck().all(channel) as string[]);
      assert.ok(committed.every((id) => stored.has(id)), "every send the producer saw committed is in the file");
      assert.equal(stored.size % 20, 0, "batches are all or nothing");
    } finally {
      db.close();
    }
  });
});
