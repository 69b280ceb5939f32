/**
 * WAL checkpoints off the event loop.
 *
 * Under WAL each commit appends its pages to `<file>-wal`; a checkpoint copies
 * them back into the database file. With `synchronous=normal` a checkpoint is
 * also where SQLite syncs to disk (the WAL before, the database file after),
 * so SQLite's automatic checkpoint, which runs inside whichever commit crosses
 * `wal_autocheckpoint` pages, makes one send in a few hundred wait for two
 * fsyncs on the event loop. That was the largest single cost of an awaited
 * `dispatch()` on this transport.
 *
 * Instead, one worker thread per file and process holds its own connection
 * and runs `PRAGMA wal_checkpoint(PASSIVE)` every {@link CHECKPOINT_EVERY_MS}.
 * A passive checkpoint never blocks writers or readers: it copies what it can
 * and leaves the rest for the next round. The main connection keeps a high
 * `wal_autocheckpoint` ({@link BACKSTOP_PAGES}) as a backstop, so the WAL stays
 * bounded even if the thread falls behind or dies, and `journal_size_limit`
 * trims the file after a checkpoint resets it.
 *
 * Durability is unchanged: a commit is in the WAL (and, with `synchronous=full`,
 * synced) before the send returns, exactly as before; only the copying back
 * moves to another thread.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";

/** How often the checkpoint thread runs a passive checkpoint, in ms. */
export const CHECKPOINT_EVERY_MS = 100;

/** `wal_autocheckpoint` of connections whose file has a checkpoint thread (pages, 4 KiB each). */
export const BACKSTOP_PAGES = 10_000;

/** `journal_size_limit` of those connections: the WAL is cut back to this after a reset, in bytes. */
export const WAL_SIZE_LIMIT = 64 * 1024 * 1024;

// Plain CommonJS so the thread runs without the TypeScript loader.
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma("busy_timeout = 0");
const round = () => {
  try { db.pragma("wal_checkpoint(PASSIVE)"); } catch { /* busy or closing: the next round tries again */ }
};
const timer = setInterval(round, workerData.everyMs);
parentPort.on("message", () => {
  clearInterval(timer);
  round();
  db.close();
  parentPort.close();
});
`;

const driverPath = createRequire(import.meta.url).resolve("better-sqlite3");

interface Entry {
  worker: Worker;
  refs: number;
}

const threads = new Map<string, Entry>();

/**
 * Move checkpoints of `path` to a background thread while this connection is
 * open. Call {@link releaseCheckpointer} with the same path when it closes.
 * Files in memory have no WAL and get nothing.
 */
export function acquireCheckpointer(db: Database.Database, path: string): void {
  if (path === ":memory:") return;
  db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
  const entry = threads.get(path);
  if (entry) {
    entry.refs++;
    return;
  }
  const worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { driver: driverPath, path, everyMs: CHECKPOINT_EVERY_MS } });
  worker.unref();
  // A thread that fails (the file went away, the driver failed to load) leaves the backstop in charge.
  worker.on("error", () => threads.get(path)?.worker === worker && threads.delete(path));
  threads.set(path, { worker, refs: 1 });
}

/** Longest wait for a thread to end at release: a stuck thread must not hang `close()`. */
const RELEASE_WAIT_MS = 5000;

/**
 * Drop one hold on the thread of `path`; the last one runs a final checkpoint and
 * ends it. Resolves when that thread has closed its connection (at most
 * {@link RELEASE_WAIT_MS}), so a caller that closed its transport can delete the
 * file's directory without the thread touching it afterwards.
 */
export function releaseCheckpointer(path: string): Promise<void> {
  const entry = threads.get(path);
  if (!entry || --entry.refs > 0) return Promise.resolve();
  threads.delete(path);
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, RELEASE_WAIT_MS);
    timer.unref();
    // Held from here until it ends: something must keep this process up while close() waits.
    entry.worker.ref();
    entry.worker.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    entry.worker.postMessage("close");
  });
}
