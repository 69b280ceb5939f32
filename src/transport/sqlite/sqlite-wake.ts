/**
 * Waking waiting receives without polling.
 *
 * Two paths:
 * - **In this process**: every transport on the same file shares one hub; a
 *   send, retry, replay or resume calls `wake()`, which wakes every waiting
 *   receive at once (no I/O).
 * - **From other processes**: under WAL every commit appends frames to the
 *   `<file>-wal` file with `write()`, which the OS reports to a watcher (inotify
 *   on Linux, FSEvents/kqueue elsewhere). The hub watches the file's folder
 *   (not the WAL file itself, which SQLite may delete and recreate) and wakes
 *   its waiters when `<file>-wal` changes. A waiter woken by a commit that
 *   brought no work for it simply queries again and goes back to sleep.
 *
 * The watch runs only while this process has receives waiting (and lingers
 * {@link WATCH_LINGER_MS} after the last one), so a process that only sends,
 * or a worker too busy to wait, does not pay for reading its own commit events.
 * A receive that had to start the watch queries once more before sleeping: a
 * commit that landed before the watch existed is then found by that query.
 *
 * A commit happens before the OS reports it, and a receive registers its waiter
 * synchronously right after its query, so no commit can slip between the two.
 * Where the OS gives no events (some network filesystems), the transport's
 * safety re-check (`recheckMs`, default 2 s) still finds the work.
 */
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";

/** How long the file watch outlives the last waiting receive, in ms. */
export const WATCH_LINGER_MS = 5000;

/** A set of waiters on one SQLite file in this process. */
export class WakeHub {
  readonly key: string;
  #waiters = new Set<() => void>();
  #refs = 0;
  #watchPath: string | undefined;
  #watcher: FSWatcher | undefined;
  #linger: NodeJS.Timeout | undefined;

  constructor(key: string) {
    this.key = key;
  }

  /** Register a waiter; returns a function that removes it. */
  add(waiter: () => void): () => void {
    this.#waiters.add(waiter);
    if (this.#linger) {
      clearTimeout(this.#linger);
      this.#linger = undefined;
    }
    return () => {
      this.#waiters.delete(waiter);
      if (this.#waiters.size === 0 && this.#watcher && !this.#linger) {
        this.#linger = setTimeout(() => {
          this.#linger = undefined;
          if (this.#waiters.size === 0) this.#stopWatching();
        }, WATCH_LINGER_MS);
        this.#linger.unref();
      }
    };
  }

  /**
   * Make sure the cross-process watch runs. Returns true when it was started
   * just now: the caller must query once more before sleeping.
   */
  startWatching(): boolean {
    if (this.#watchPath === undefined || this.#watcher) return false;
    const wal = `${basename(this.#watchPath)}-wal`;
    try {
      // persistent: false, so an idle watcher never keeps the process alive.
      this.#watcher = watch(dirname(this.#watchPath), { persistent: false }, (_event, filename) => {
        if (filename === null || filename === wal) this.wake();
      });
      this.#watcher.on("error", () => this.#stopWatching());
      return true;
    } catch {
      this.#watchPath = undefined; // no OS events here: the safety re-check covers it
      return false;
    }
  }

  /** Wake every waiter now. */
  wake(): void {
    if (this.#waiters.size === 0) return;
    for (const w of [...this.#waiters]) w();
  }

  /** How many receives are waiting (for tests). */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** True while the cross-process watcher is running. */
  get watching(): boolean {
    return this.#watcher !== undefined;
  }

  /** @internal */
  retain(watchPath: string | undefined): void {
    this.#refs++;
    if (watchPath !== undefined) this.#watchPath = watchPath;
  }

  /** @internal */
  release(): boolean {
    this.#refs--;
    if (this.#refs > 0) return false;
    this.#stopWatching();
    this.wake();
    return true;
  }

  #stopWatching(): void {
    if (this.#linger) clearTimeout(this.#linger);
    this.#linger = undefined;
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}

const hubs = new Map<string, WakeHub>();
let privateHubs = 0;

/**
 * The hub of a file, shared by every transport of this process on it. For
 * `":memory:"` each transport gets its own hub and no watcher.
 * Call {@link releaseWakeHub} once per acquire.
 */
export function acquireWakeHub(path: string, crossProcess: boolean): WakeHub {
  if (path === ":memory:") {
    const hub = new WakeHub(`:memory:#${privateHubs++}`);
    hub.retain(undefined);
    return hub;
  }
  const key = resolve(path);
  let hub = hubs.get(key);
  if (!hub) hubs.set(key, (hub = new WakeHub(key)));
  hub.retain(crossProcess ? key : undefined);
  return hub;
}

/** Drop one reference; the last one stops the watcher. */
export function releaseWakeHub(hub: WakeHub): void {
  if (hub.release() && hubs.get(hub.key) === hub) hubs.delete(hub.key);
}
