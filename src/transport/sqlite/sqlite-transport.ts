/**
 * The SQLite transport: the embedded default. One file in WAL mode, shared
 * safely by every worker process on the machine.
 *
 * - One connection per transport; every batch (send, receive, ack, retry,
 *   dead-letter, extend) is one `BEGIN IMMEDIATE` transaction.
 * - One row per message, which is also its run record: receive is one UPDATE
 *   ... RETURNING, ack one UPDATE (see migrations/001_messages.sql).
 * - Due times and leases come from the injectable clock (default the system
 *   clock; all processes on one machine share it).
 * - A waiting receive sleeps until woken (see sqlite-wake.ts), until the next
 *   due time (next delayed runAt or lease expiry) or until its wait ends, never
 *   on a short fixed interval; a long safety re-check (`recheckMs`) covers
 *   filesystems that report no changes.
 * - Another process's write lock is waited for on timers, not inside SQLite:
 *   its busy handler sleeps the whole thread, which would stall this process's
 *   HTTP server, heartbeats and every other run for as long as the lock is held.
 */
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import type Database from "better-sqlite3";
import { systemClock, type Clock } from "../../core/clock.ts";
import type { Envelope } from "../../core/envelope.ts";
import { FerryError } from "../../core/errors.ts";
import type {
  AckItem,
  ChannelCounts,
  DeadItem,
  DeadLetterAdmin,
  Delivery,
  Inspectable,
  LeaseRef,
  ListQuery,
  MessageRecord,
  MessageState,
  Pausable,
  Prunable,
  ReceiveRequest,
  RetryItem,
  SendReceipt,
  Transport,
} from "../types.ts";
import { SqliteAdmin } from "./sqlite-admin.ts";
import { createBatches, type Batches, type ReceiveOutcome } from "./sqlite-batches.ts";
import { acquireCheckpointer, releaseCheckpointer } from "./sqlite-checkpointer.ts";
import { busyTimeoutOf, isLocked, lockWait, storeError } from "./sqlite-errors.ts";
import { byDeliveryOrder, leasedToEnvelope } from "./sqlite-rows.ts";
import { openDatabase, type SqliteSynchronous } from "./sqlite-schema.ts";
import { Statements, type LeasedRow } from "./sqlite-statements.ts";
import { parseSqliteUrl } from "./sqlite-url.ts";
import { Retainer, RETAIN_BATCH_SYNC } from "../retainer.ts";
import { keepsNothing, resolveRetention, type RetentionOptions } from "../retention.ts";
import { acquireWakeHub, releaseWakeHub, type WakeHub } from "./sqlite-wake.ts";

/** Options of {@link SqliteTransport}. */
export interface SqliteTransportOptions {
  /** The database file (parent folders are created), or `":memory:"` for a private in-memory store. Required. */
  path: string;
  /** Source of time for due times and leases. Default the system clock. */
  clock?: Clock;
  /** `PRAGMA synchronous`. Default `"normal"`: under WAL a process crash loses nothing; power loss may lose the last commits. */
  synchronous?: SqliteSynchronous;
  /**
   * How long a call waits for another process's write lock, in ms, before it fails with
   * `TRANSPORT_UNAVAILABLE`. Default 5000. The wait is on timers: the event loop runs meanwhile.
   */
  busyTimeoutMs?: number;
  /** Watch the file for commits by other processes while a receive waits (see sqlite-wake.ts). Default true. */
  watch?: boolean;
  /** Longest a waiting receive sleeps before looking again even without a wake-up, in ms (at least 1000). Default 2000. */
  recheckMs?: number;
  /**
   * Retention of finished rows, enforced in the background (see `../retainer.ts`), about
   * once a second while this process finishes messages, in steps of 1,000 rows per
   * channel; a completed rule that keeps nothing (`count: 0` or `age: 0`) deletes each
   * row as it is acked instead. Defaults in {@link RetentionOptions}: completed 10,000 per channel for at
   * most a day, dead-lettered 100,000 for at most 30 days.
   */
  retention?: RetentionOptions;
}

/** The embedded SQLite transport with the full capability set. */
export class SqliteTransport implements Transport, Inspectable, DeadLetterAdmin, Prunable, Pausable {
  readonly kind = "sqlite";
  /** The clock due times and leases are measured by. */
  readonly clock: Clock;
  /** The database file path as given. */
  readonly path: string;
  readonly #db: Database.Database;
  readonly #admin: SqliteAdmin;
  readonly #hub: WakeHub;
  readonly #recheckMs: number;
  readonly #tokenPrefix = randomBytes(6).toString("base64url");
  #tokenSeq = 0;
  #closed = false;
  readonly #batch: Batches;
  /** The file's absolute path (":memory:" as is): one checkpoint thread per file and process. */
  readonly #fileKey: string;
  readonly #retainer: Retainer;
  readonly #busyTimeoutMs: number;
  readonly #stillOpen = () => this.#checkOpen();

  /**
   * Open (and create or migrate) the store.
   * @throws FerryError `INVALID_OPTION` for a missing path, `TRANSPORT_UNAVAILABLE` when the file cannot be opened
   */
  constructor(options: SqliteTransportOptions) {
    if (typeof options?.path !== "string" || options.path.length === 0) {
      throw new FerryError("INVALID_OPTION", `SqliteTransport needs a path, e.g. { path: "./data/ferry.db" }`, { details: { option: "path" } });
    }
    this.path = options.path;
    this.#fileKey = options.path === ":memory:" ? options.path : resolve(options.path);
    this.clock = options.clock ?? systemClock;
    const retention = resolveRetention(options.retention);
    this.#recheckMs = Math.max(1000, options.recheckMs ?? 2000);
    this.#busyTimeoutMs = busyTimeoutOf(options.busyTimeoutMs);
    this.#db = openDatabase(options);
    this.#admin = new SqliteAdmin(this.#db);
    this.#hub = acquireWakeHub(options.path, options.watch ?? true);
    acquireCheckpointer(this.#db, this.#fileKey);
    const newToken = () => `${this.#tokenPrefix}${(++this.#tokenSeq).toString(36)}`;
    this.#batch = createBatches(this.#db, new Statements(this.#db), options.path, newToken, keepsNothing(retention.completed));
    this.#retainer = new Retainer(
      retention,
      async (state, rule, batch) => {
        if (this.#closed) return 0;
        return this.#adminCall("enforcing retention", (a) => a.retain(state, rule.count, rule.ageMs >= 0 ? this.clock.now() - rule.ageMs : null, batch));
      },
      RETAIN_BATCH_SYNC,
    );
  }

  /**
   * Open a transport from a `sqlite://` URL (see sqlite-url.ts for the forms and options).
   * @throws FerryError `INVALID_URL`, `TRANSPORT_UNAVAILABLE`
   */
  static async fromUrl(url: URL): Promise<SqliteTransport> {
    return new SqliteTransport(parseSqliteUrl(url));
  }

  /** Open a transport (the same as the constructor, as a promise). */
  static async open(options: SqliteTransportOptions): Promise<SqliteTransport> {
    return new SqliteTransport(options);
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #checkOpen(): void {
    if (this.#closed) throw new FerryError("TRANSPORT_CLOSED", `the SQLite transport on ${JSON.stringify(this.path)} is closed; open a new one to continue`);
  }

  async send(messages: readonly Envelope[]): Promise<SendReceipt[]> {
    this.#checkOpen();
    if (messages.length === 0) return [];
    const receipts = await this.#locked(() => this.#batch.send(messages, this.clock.now()));
    this.#hub.wake();
    return receipts;
  }

  async receive(request: ReceiveRequest): Promise<Delivery[]> {
    this.#checkOpen();
    const { channels, max, leaseMs, signal } = request;
    const deadline = this.clock.now() + Math.max(0, request.waitMs);
    const lease = (at: number) => this.#batch.receive(channels, Math.floor(max), leaseMs, at);
    for (;;) {
      if (this.#closed || signal?.aborted) return [];
      const now = this.clock.now();
      if (max < 1 || channels.length === 0) return [];
      let found: ReceiveOutcome;
      try {
        found = lease(now);
      } catch (err) {
        if (!isLocked(err)) throw err;
        // Another process holds the write lock: wait for it on timers. When the receive that
        // then ran found nothing, look again here, with no await before the waiter below.
        found = await this.#locked(() => lease(this.clock.now()));
        if (found.rows.length === 0) continue;
      }
      const { rows, token, nextDue } = found;
      if (rows.length > 0) return this.#deliveries(rows, token);
      if (nextDue > deadline && now >= deadline) return [];
      // Started the cross-process watch just now: look once more, since a commit
      // between the query above and the watch would otherwise go unnoticed.
      if (this.#hub.startWatching()) continue;
      const until = Math.min(deadline, nextDue, now + this.#recheckMs);
      // No await between the query above and registering the waiter in #sleep:
      // a commit that the query missed is reported after the waiter exists.
      await this.#sleep(Math.max(0, until - now), signal);
    }
  }

  #deliveries(rows: LeasedRow[], token: string): Delivery[] {
    if (rows.length > 1) rows.sort(byDeliveryOrder);
    const out: Delivery[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      out[i] = { message: leasedToEnvelope(r), token: `${r[0]}:${token}`, leaseExpiresAt: r[13] };
    }
    return out;
  }

  async #sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    const wake = new AbortController();
    const onWake = () => wake.abort();
    const remove = this.#hub.add(onWake);
    signal?.addEventListener("abort", onWake, { once: true });
    try {
      await this.clock.sleep(ms, wake.signal);
    } finally {
      remove();
      signal?.removeEventListener("abort", onWake);
    }
  }

  async ack(items: readonly AckItem[]): Promise<boolean[]> {
    this.#checkOpen();
    if (items.length === 0) return [];
    const done = await this.#locked(() => this.#batch.ack(items, this.clock.now()));
    this.#retainer.noteFinished(done);
    return done;
  }

  async retry(items: readonly RetryItem[]): Promise<boolean[]> {
    this.#checkOpen();
    if (items.length === 0) return [];
    const out = await this.#locked(() => this.#batch.retry(items, this.clock.now()));
    this.#hub.wake();
    return out;
  }

  async deadLetter(items: readonly DeadItem[]): Promise<boolean[]> {
    this.#checkOpen();
    if (items.length === 0) return [];
    const done = await this.#locked(() => this.#batch.deadLetter(items, this.clock.now()));
    this.#retainer.noteFinished(done);
    return done;
  }

  async extend(items: readonly LeaseRef[], leaseMs: number): Promise<boolean[]> {
    this.#checkOpen();
    if (items.length === 0) return [];
    return this.#locked(() => this.#batch.extend(items, this.clock.now() + leaseMs));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#retainer.close();
    if (this.#closed) return;
    this.#closed = true;
    releaseWakeHub(this.#hub);
    this.#hub.wake();
    this.#db.close();
    await releaseCheckpointer(this.#fileKey);
  }

  /** Run a store call, waiting out other processes' write locks on timers (see {@link lockWait}). */
  #locked<T>(fn: () => T): Promise<T> {
    return lockWait(fn, this.#busyTimeoutMs, this.#stillOpen);
  }

  /** Run an admin call, turning driver errors into FerryErrors and waiting out write locks. */
  #adminCall<T>(operation: string, fn: (admin: SqliteAdmin) => T): Promise<T> {
    this.#checkOpen();
    return this.#locked(() => {
      try {
        return fn(this.#admin);
      } catch (err) {
        throw storeError(err, operation, this.path);
      }
    });
  }

  async counts(): Promise<ChannelCounts[]> {
    return this.#adminCall("counts", (a) => a.counts(this.clock.now()));
  }

  async list(query: ListQuery): Promise<MessageRecord[]> {
    return this.#adminCall("list", (a) => a.list(query));
  }

  async get(id: string): Promise<MessageRecord | null> {
    return this.#adminCall("get", (a) => a.get(id));
  }

  async replay(ids: readonly string[]): Promise<string[]> {
    const moved = await this.#adminCall("replay", (a) => a.replay(ids, this.clock.now()));
    if (moved.length > 0) this.#hub.wake();
    return moved;
  }

  async discard(ids: readonly string[]): Promise<string[]> {
    return this.#adminCall("discard", (a) => a.discard(ids));
  }

  /**
   * Enforce the retention rules now, as the background does about once a second while
   * messages finish. Returns rows deleted. For tests and maintenance scripts.
   */
  enforceRetention(): Promise<number> {
    this.#checkOpen();
    return this.#retainer.run();
  }

  async prune(options: { before: number; states?: readonly MessageState[] }): Promise<number> {
    return this.#adminCall("prune", (a) => a.prune(options.before, options.states));
  }

  async pause(channel: string): Promise<void> {
    await this.#adminCall("pause", (a) => a.pause(channel, this.clock.now()));
  }

  async resume(channel: string): Promise<void> {
    await this.#adminCall("resume", (a) => a.resume(channel));
    this.#hub.wake();
  }

  async paused(): Promise<string[]> {
    return this.#adminCall("paused", (a) => a.paused());
  }
}
