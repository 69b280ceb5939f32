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
 */
import { randomBytes } from "node:crypto";
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
import { byDeliveryOrder, leasedToEnvelope, tokenSeq } from "./sqlite-rows.ts";
import { openDatabase, type SqliteSynchronous } from "./sqlite-schema.ts";
import { Statements, type LeasedRow } from "./sqlite-statements.ts";
import { parseSqliteUrl } from "./sqlite-url.ts";
import { acquireWakeHub, releaseWakeHub, type WakeHub } from "./sqlite-wake.ts";

/** Options of {@link SqliteTransport}. */
export interface SqliteTransportOptions {
  /** The database file (parent folders are created), or `":memory:"` for a private in-memory store. Required. */
  path: string;
  /** Source of time for due times and leases. Default the system clock. */
  clock?: Clock;
  /** `PRAGMA synchronous`. Default `"normal"`: under WAL a process crash loses nothing; power loss may lose the last commits. */
  synchronous?: SqliteSynchronous;
  /** How long a statement waits for another process's write lock, in ms. Default 5000. */
  busyTimeoutMs?: number;
  /** Watch the file for commits by other processes. Default true. */
  watch?: boolean;
  /** Longest a waiting receive sleeps before looking again even without a wake-up, in ms. Default 2000. */
  recheckMs?: number;
}

interface ReceiveOutcome {
  rows: LeasedRow[];
  /** The fencing token issued to every row of this batch. */
  token: string;
  /** Earliest time something in the requested channels becomes due (Infinity: nothing pending). */
  nextDue: number;
}

/** The embedded SQLite transport with the full capability set. */
export class SqliteTransport implements Transport, Inspectable, DeadLetterAdmin, Prunable, Pausable {
  readonly kind = "sqlite";
  /** The clock due times and leases are measured by. */
  readonly clock: Clock;
  /** The database file path as given. */
  readonly path: string;
  readonly #db: Database.Database;
  readonly #st: Statements;
  readonly #admin: SqliteAdmin;
  readonly #hub: WakeHub;
  readonly #recheckMs: number;
  readonly #tokenPrefix = randomBytes(6).toString("base64url");
  #tokenSeq = 0;
  #closed = false;

  readonly #sendTx: (messages: readonly Envelope[], now: number) => SendReceipt[];
  readonly #receiveTx: (channels: readonly string[], max: number, leaseMs: number, now: number) => ReceiveOutcome;
  readonly #ackTx: (items: readonly AckItem[], now: number) => boolean[];
  readonly #retryTx: (items: readonly RetryItem[], now: number) => boolean[];
  readonly #deadTx: (items: readonly DeadItem[], now: number) => boolean[];
  readonly #extendTx: (items: readonly LeaseRef[], expiresAt: number) => boolean[];

  /**
   * Open (and create or migrate) the store.
   * @throws FerryError `INVALID_OPTION` for a missing path, `TRANSPORT_UNAVAILABLE` when the file cannot be opened
   */
  constructor(options: SqliteTransportOptions) {
    if (typeof options?.path !== "string" || options.path.length === 0) {
      throw new FerryError("INVALID_OPTION", `SqliteTransport needs a path, e.g. { path: "./data/ferry.db" }`, { details: { option: "path" } });
    }
    this.path = options.path;
    this.clock = options.clock ?? systemClock;
    this.#recheckMs = Math.max(1000, options.recheckMs ?? 2000);
    this.#db = openDatabase(options);
    this.#st = new Statements(this.#db);
    this.#admin = new SqliteAdmin(this.#db);
    this.#hub = acquireWakeHub(options.path, options.watch ?? true);

    const db = this.#db;
    const st = this.#st;
    this.#sendTx = db.transaction((messages: readonly Envelope[], now: number) => {
      const receipts: SendReceipt[] = new Array(messages.length);
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i]!;
        const payload = JSON.stringify(m.payload);
        if (payload === undefined) throw new FerryError("INVALID_MESSAGE", `message ${m.id}: payload is not JSON (use null for none)`, { details: { field: "payload" } });
        const changes = st.insert.run(m.id, m.v, m.channel, m.name, payload, JSON.stringify(m.headers), m.maxAttempts, m.runAt, m.priority, m.dedupKey, m.dedupKey, m.createdAt, m.runAt <= now ? "ready" : "delayed").changes;
        if (changes === 1) receipts[i] = { id: m.id, deduplicated: false };
        else {
          const holder = m.dedupKey === null ? undefined : (st.dedupHolder.get(m.dedupKey) as string | undefined);
          receipts[i] = { id: holder ?? m.id, deduplicated: true };
        }
      }
      return receipts;
    }).immediate;

    this.#receiveTx = db.transaction((channels: readonly string[], max: number, leaseMs: number, now: number): ReceiveOutcome => {
      const paused = st.pausedList.all() as string[];
      const open = paused.length === 0 ? channels : channels.filter((c) => !paused.includes(c));
      if (open.length === 0) return { rows: [], token: "", nextDue: Infinity };
      for (const c of open) st.promote.run(c, now);
      const token = `${this.#tokenPrefix}${(++this.#tokenSeq).toString(36)}`;
      const params: unknown[] = [token, now + leaseMs, now];
      for (const c of open) params.push(c, now, max);
      if (open.length > 1) params.push(max);
      const rows = st.receive(open.length).all(...params) as LeasedRow[];
      if (rows.length > 0) return { rows, token, nextDue: now };
      let nextDue = Infinity;
      for (const c of open) {
        const delayed = st.nextDelayed.get(c) as number | null;
        const lease = st.nextLeaseExpiry.get(c) as number | null;
        if (delayed !== null && delayed < nextDue) nextDue = delayed;
        if (lease !== null && lease < nextDue) nextDue = lease;
      }
      return { rows, token, nextDue };
    }).immediate;

    this.#ackTx = db.transaction((items: readonly AckItem[], now: number) =>
      items.map((it) => st.ack.run(it.status ?? "completed", it.result === undefined ? null : JSON.stringify(it.result), now, tokenSeq(it.token), it.token, it.id).changes === 1),
    ).immediate;

    this.#retryTx = db.transaction((items: readonly RetryItem[], now: number) =>
      items.map(
        (it) =>
          st.retry.run({
            state: it.runAt <= now ? "ready" : "delayed",
            runAt: it.runAt,
            used: it.attemptUsed ? 1 : 0,
            error: it.error === undefined ? null : JSON.stringify(it.error),
            seq: tokenSeq(it.token),
            token: it.token,
            id: it.id,
          }).changes === 1,
      ),
    ).immediate;

    this.#deadTx = db.transaction((items: readonly DeadItem[], now: number) =>
      items.map((it) => st.dead.run({ now, error: JSON.stringify(it.error), seq: tokenSeq(it.token), token: it.token, id: it.id }).changes === 1),
    ).immediate;

    this.#extendTx = db.transaction((items: readonly LeaseRef[], expiresAt: number) => items.map((it) => st.extend.run(expiresAt, tokenSeq(it.token), it.token, it.id).changes === 1)).immediate;
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
    const receipts = this.#sendTx(messages, this.clock.now());
    this.#hub.wake();
    return receipts;
  }

  async receive(request: ReceiveRequest): Promise<Delivery[]> {
    this.#checkOpen();
    const { channels, max, leaseMs, signal } = request;
    const deadline = this.clock.now() + Math.max(0, request.waitMs);
    for (;;) {
      if (this.#closed || signal?.aborted) return [];
      const now = this.clock.now();
      if (max < 1 || channels.length === 0) return [];
      const { rows, token, nextDue } = this.#receiveTx(channels, Math.floor(max), leaseMs, now);
      if (rows.length > 0) return this.#deliveries(rows, token);
      if (nextDue > deadline && now >= deadline) return [];
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
    return this.#ackTx(items, this.clock.now());
  }

  async retry(items: readonly RetryItem[]): Promise<boolean[]> {
    this.#checkOpen();
    if (items.length === 0) return [];
    const out = this.#retryTx(items, this.clock.now());
    this.#hub.wake();
    return out;
  }

  async deadLetter(items: readonly DeadItem[]): Promise<boolean[]> {
    this.#checkOpen();
    if (items.length === 0) return [];
    return this.#deadTx(items, this.clock.now());
  }

  async extend(items: readonly LeaseRef[], leaseMs: number): Promise<boolean[]> {
    this.#checkOpen();
    if (items.length === 0) return [];
    return this.#extendTx(items, this.clock.now() + leaseMs);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    releaseWakeHub(this.#hub);
    this.#hub.wake();
    this.#db.close();
  }

  async counts(): Promise<ChannelCounts[]> {
    this.#checkOpen();
    return this.#admin.counts(this.clock.now());
  }

  async list(query: ListQuery): Promise<MessageRecord[]> {
    this.#checkOpen();
    return this.#admin.list(query);
  }

  async get(id: string): Promise<MessageRecord | null> {
    this.#checkOpen();
    return this.#admin.get(id);
  }

  async replay(ids: readonly string[]): Promise<string[]> {
    this.#checkOpen();
    const moved = this.#admin.replay(ids, this.clock.now());
    if (moved.length > 0) this.#hub.wake();
    return moved;
  }

  async discard(ids: readonly string[]): Promise<string[]> {
    this.#checkOpen();
    return this.#admin.discard(ids);
  }

  async prune(options: { before: number; states?: readonly MessageState[] }): Promise<number> {
    this.#checkOpen();
    return this.#admin.prune(options.before, options.states);
  }

  async pause(channel: string): Promise<void> {
    this.#checkOpen();
    this.#admin.pause(channel, this.clock.now());
  }

  async resume(channel: string): Promise<void> {
    this.#checkOpen();
    this.#admin.resume(channel);
    this.#hub.wake();
  }

  async paused(): Promise<string[]> {
    this.#checkOpen();
    return this.#admin.paused();
  }
}
