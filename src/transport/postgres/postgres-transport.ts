/**
 * The PostgreSQL transport: a queue inside the application's own database.
 * One row per message is also its run record. Receive leases a batch with
 * `FOR UPDATE SKIP LOCKED` in one round trip; idle receivers sleep on
 * LISTEN/NOTIFY and a timer for the next due time only; due times, leases and
 * fencing tokens follow the database clock. `sendWithin` enqueues inside the
 * caller's transaction: the message exists if and only if it commits.
 */
import pg from "pg";
import type { Envelope } from "../../core/envelope.ts";
import { FerryError } from "../../core/errors.ts";
import { assertChannel } from "../../core/names.ts";
import {
  MAX_ERROR_HISTORY,
  MESSAGE_STATES,
  type AckItem,
  type ChannelCounts,
  type DeadItem,
  type DeadLetterAdmin,
  type Delivery,
  type Inspectable,
  type LeaseRef,
  type ListQuery,
  type MessageRecord,
  type MessageState,
  type Pausable,
  type Prunable,
  type ReceiveRequest,
  type RetryItem,
  type SendReceipt,
  type TransactionalSend,
  type Transport,
} from "../types.ts";
import { DEFAULT_SCHEMA, migrate, notifyChannel, parsePostgresUrl, quoteSchema } from "./migrate.ts";
import { Notifier } from "./notifier.ts";
import { byDeliveryOrder, ReadAhead, type Leased } from "../read-ahead.ts";
import { mapPgError } from "./pg-errors.ts";
import { fenceable, firstOf, storedError, toEnvelope, UNSAFE_ESCAPE, type LeaseRow, type RecordRow } from "./rows.ts";
import { buildStatements, type Statement, type Statements } from "./statements.ts";
import { keepsNothing, resolveRetention, type RetainRules, type RetentionOptions } from "../retention.ts";
import { Retainer } from "../retainer.ts";

/** Options of {@link PostgresTransport.open}. */
export interface PostgresTransportOptions {
  /** A `postgres://` connection string. Required unless `pool` is given. */
  connectionString?: string;
  /** Use this pool instead of making one; `close()` leaves it open. One of its connections is kept for LISTEN. */
  pool?: pg.Pool;
  /** Ferry's schema. Default `"ferry"`. */
  schema?: string;
  /** Create or upgrade the schema on open. Default `true`; with `false`, run `ferry migrate` first. */
  migrate?: boolean;
  /**
   * Connections in the pool made from `connectionString` (one is kept for LISTEN). Default `10`.
   * Such a transport also opens {@link leasePoolSize} connections of its own for leases.
   */
  poolSize?: number;
  /**
   * Retention of finished rows, enforced in the background (see `../retainer.ts`): about once
   * a second while this process finishes messages. A completed rule that keeps nothing
   * (`count: 0` or `age: 0`) deletes each row as it is acked instead. Defaults in
   * {@link RetentionOptions}: completed 10,000 per channel for at most a day, dead-lettered
   * 100,000 for at most 30 days.
   */
  retention?: RetentionOptions;
}

/**
 * The name of the advisory lock a schema's retention runs under (`hashtext` of it, as
 * migrations lock `ferry.migrate:<schema>`): one pruning process per schema at a time.
 */
export function retentionLockName(schema: string): string {
  return `ferry.retain:${schema}`;
}

/**
 * Connections of the lease pool for a main pool of `poolSize`: a quarter of it, at least 2.
 * A transport that makes its own pool runs its lease statements on these, whose sessions
 * use generic plans ({@link LEASE_SESSION}). PostgreSQL would otherwise plan every lease
 * anew (its generic plan looks dearer than a custom one for a small `LIMIT`), and planning
 * was most of a small lease's time on the server: a lease of 5 from 20,000 rows ran in
 * 0.2 ms against 0.8 ms. Other statements stay on the main pool with PostgreSQL's own
 * choice of plan, since inspection queries' plans do depend on their parameters. Each
 * consumer loop (a worker, a reply inbox) has at most one lease statement in flight; more
 * busy loops than lease connections take turns, so a process with many raises `poolSize`.
 */
export function leasePoolSize(poolSize: number): number {
  return Math.max(2, Math.floor(poolSize / 4));
}

/**
 * The startup options of a lease-pool session (besides the main pool's `ferry.notify=off`).
 * A generic plan is made once per session, from the statistics of that moment, often an
 * empty table, and kept as the table grows: planned on an empty table, the lease's update
 * scanned the whole table for its rows (40 ms a lease at 10,000 rows). So these sessions
 * also rule out sequential and bitmap scans, and the statements are written so that an
 * index serves every step in the order asked for (see statements.ts): their one plan reads
 * indexes whatever the statistics said.
 */
export const LEASE_SESSION = "-c plan_cache_mode=force_generic_plan -c jit=off -c enable_seqscan=off -c enable_bitmapscan=off";

/**
 * The longest a receiver trusts that its channels have nothing due without asking
 * the database again: a NOTIFY that never arrived (a failed notify after commit, a
 * producer whose session skips the trigger) costs a waiting message at most this.
 */
const IDLE_TRUST_MS = 5000;

const FINISHED: readonly MessageState[] = ["completed", "cancelled", "dead"];
const PRUNE_BATCH = 5000;

/**
 * Open all of a pool's connections at once and have each read the table's
 * catalog entries, so the first burst of work does not wait while backends start
 * one by one (that start-up put over 100 ms on the first sends of a fresh
 * process). A schema not migrated yet is left for the first real statement to report.
 */
async function warm(pool: pg.Pool, size: number, schema: string): Promise<void> {
  const settled = await Promise.allSettled(Array.from({ length: size }, () => pool.connect()));
  const clients = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  try {
    await Promise.all(clients.map((c) => c.query(`SELECT 1 FROM ${quoteSchema(schema)}.messages LIMIT 0`).catch(() => undefined)));
  } finally {
    for (const c of clients) c.release();
  }
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) throw failed.reason;
}

/** The backend process ids of a pool's open connections, kept current as it connects and drops them. */
function backendIds(pool: pg.Pool): ReadonlySet<number> {
  const ids = new Set<number>();
  const pid = (client: pg.PoolClient) => (client as unknown as { processID: number | null }).processID;
  pool.on("connect", (client) => {
    const id = pid(client);
    if (id !== null) ids.add(id);
  });
  pool.on("remove", (client) => {
    const id = pid(client);
    if (id !== null) ids.delete(id);
  });
  return ids;
}

/** Anything with pg's `query` (a Client, a PoolClient). */
type Queryable = Pick<pg.ClientBase, "query">;

/** A transport on PostgreSQL with the full capability set. */
export class PostgresTransport implements Transport, Inspectable, DeadLetterAdmin, Prunable, Pausable, TransactionalSend {
  readonly kind = "postgres";
  /** Ferry's schema name. */
  readonly schema: string;
  readonly #pool: pg.Pool;
  /** Where leases run: the lease pool when this transport made its pools, else the main pool. */
  readonly #leasePool: pg.Pool;
  readonly #ownsPool: boolean;
  /** True when the pool's sessions set ferry.notify = off, so this transport notifies after commit. */
  readonly #notifyAfterCommit: boolean;
  #pendingNotify = new Set<string>();
  #notifying: Promise<void> | undefined;
  readonly #sql: Statements;
  readonly #notifier: Notifier;
  readonly #notifyChannel: string;
  readonly #ahead: ReadAhead;
  /**
   * Channel sets (joined with NUL) whose last lease took fewer rows than it asked for,
   * with, when that lease reported it, until when nothing more is due (see #idleFor)
   * and the notifier's wake count when it was asked (0, 0: not reported).
   */
  readonly #short = new Map<string, { wakes: number; until: number }>();
  readonly #retainer: Retainer;
  /** Acks delete their rows: retention keeps no completed records. */
  readonly #ackDeletes: boolean;
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(
    pool: pg.Pool,
    leasePool: pg.Pool,
    ownsPool: boolean,
    schema: string,
    notifyAfterCommit: boolean,
    ownBackends: ReadonlySet<number> | undefined,
    retention: RetainRules,
  ) {
    this.#notifyAfterCommit = notifyAfterCommit;
    this.#pool = pool;
    this.#leasePool = leasePool;
    this.#ownsPool = ownsPool;
    this.schema = schema;
    this.#sql = buildStatements(quoteSchema(schema));
    this.#notifyChannel = notifyChannel(schema);
    this.#notifier = new Notifier({ connect: () => this.#pool.connect(), channel: this.#notifyChannel, ...(ownBackends ? { ownBackends } : {}) });
    this.#ahead = new ReadAhead({ lease: (channels, max, leaseMs) => this.#lease(channels, max, leaseMs), release: (items) => this.#release(items) });
    this.#ackDeletes = keepsNothing(retention.completed);
    const lock = retentionLockName(schema);
    this.#retainer = new Retainer(retention, async (state, rule, batch) => {
      const rows = await this.#run("enforcing retention", this.#sql.retain, [state, rule.count, rule.ageMs >= 0 ? rule.ageMs : null, batch, lock]);
      return rows.length;
    });
  }

  /**
   * Open a transport: check options, connect, and (unless `migrate: false`) create
   * or upgrade the schema.
   * @throws FerryError `INVALID_NAME`, `INVALID_OPTION`, `TRANSPORT_UNAVAILABLE`, `CONFIG_INVALID`
   */
  static async open(options: PostgresTransportOptions): Promise<PostgresTransport> {
    const schema = options.schema ?? DEFAULT_SCHEMA;
    quoteSchema(schema);
    const retention = resolveRetention(options.retention);
    const poolSize = options.poolSize ?? 10;
    if (!Number.isInteger(poolSize) || poolSize < 2 || poolSize > 1000) {
      throw new FerryError("INVALID_OPTION", `poolSize must be a whole number from 2 to 1000 (one connection listens), got ${String(options.poolSize)}`, { details: { option: "poolSize" } });
    }
    if (!options.pool && !options.connectionString) {
      throw new FerryError("INVALID_OPTION", "the PostgreSQL transport needs a connectionString (postgres://...) or a pool", { details: { option: "connectionString" } });
    }
    const ownsPool = !options.pool;
    // Our own sessions skip the triggers' in-transaction NOTIFY (which serializes
    // concurrent commits) and notify after commit instead. A pool we were given,
    // or a URL that sets its own startup options, keeps the triggers' NOTIFY.
    const notifyAfterCommit = ownsPool && !/[?&]options=/.test(options.connectionString ?? "");
    const ownPool = (size: number, name: string, sessionOptions: string) => {
      const made = new pg.Pool({
        connectionString: options.connectionString,
        max: size,
        // Connections stay open: a burst after a quiet spell should not wait for new backends.
        min: size,
        application_name: name,
        ...(notifyAfterCommit ? { options: sessionOptions } : {}),
      });
      made.on("error", () => {}); // an idle client's error surfaces on its next query
      return made;
    };
    const pool = options.pool ?? ownPool(poolSize, `ferry:${schema}`, "-c ferry.notify=off");
    const leaseSize = leasePoolSize(poolSize);
    let leasePool = pool;
    // The backends of our own sessions: every NOTIFY they send follows an in-process wake-up.
    const ownBackends = notifyAfterCommit ? backendIds(pool) : undefined;
    try {
      if (options.migrate !== false) await migrate({ pool, schema });
      const { rows } = await pool.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
      // Session options go in the startup packet, which a URL with options of its own already
      // fills; plan_cache_mode is PostgreSQL 12's.
      if (notifyAfterCommit && Number(rows[0]?.v) >= 120000) leasePool = ownPool(leaseSize, `ferry:${schema}:lease`, `-c ferry.notify=off ${LEASE_SESSION}`);
      if (ownsPool) await warm(pool, poolSize, schema);
      if (leasePool !== pool) await warm(leasePool, leaseSize, schema);
    } catch (err) {
      if (ownsPool) await pool.end().catch(() => {});
      if (leasePool !== pool) await leasePool.end().catch(() => {});
      throw mapPgError(err, "opening the transport", schema);
    }
    return new PostgresTransport(pool, leasePool, ownsPool, schema, notifyAfterCommit, ownBackends, retention);
  }

  /**
   * Open from a transport URL: `postgres://user:pass@host:5432/db?schema=ferry&migrate=false&poolSize=10`.
   * The `schema`, `migrate` and `poolSize` parameters are Ferry's; the rest go to `pg`.
   */
  static async fromUrl(url: URL): Promise<PostgresTransport> {
    const settings = parsePostgresUrl(url);
    const options: PostgresTransportOptions = { connectionString: settings.connectionString, migrate: settings.migrate };
    if (settings.schema !== undefined) options.schema = settings.schema;
    if (settings.poolSize !== undefined) options.poolSize = settings.poolSize;
    if (settings.retention !== undefined) options.retention = settings.retention;
    return PostgresTransport.open(options);
  }

  #checkOpen(): void {
    if (this.#closed) throw new FerryError("TRANSPORT_CLOSED", `the PostgreSQL transport (schema "${this.schema}") is closed; open a new one to continue`);
  }

  async #run<R extends pg.QueryResultRow>(doing: string, statement: Statement, values: unknown[], on: Queryable = this.#pool): Promise<R[]> {
    try {
      const result = await on.query<R>({ name: statement.name, text: statement.text, values });
      return result.rows;
    } catch (err) {
      if (this.#closed && (on === this.#pool || on === this.#leasePool)) throw new FerryError("TRANSPORT_CLOSED", `the PostgreSQL transport closed while ${doing}`, { cause: err });
      throw mapPgError(err, doing, this.schema);
    }
  }

  async send(messages: readonly Envelope[]): Promise<SendReceipt[]> {
    this.#checkOpen();
    return this.#send(this.#pool, messages);
  }

  /**
   * Send inside the caller's transaction. `transaction` is a `pg` Client or
   * PoolClient on the same database, after `BEGIN`; the messages (and the wake-up
   * NOTIFY) exist if and only if that transaction commits.
   * @throws FerryError `INVALID_OPTION` when `transaction` is not a `pg` client
   */
  async sendWithin(transaction: unknown, messages: readonly Envelope[]): Promise<SendReceipt[]> {
    this.#checkOpen();
    if (typeof (transaction as Partial<Queryable> | null)?.query !== "function" || transaction instanceof pg.Pool) {
      throw new FerryError("INVALID_OPTION", "sendWithin needs a pg Client or PoolClient inside BEGIN (a Pool runs each query in its own transaction; check a client out with pool.connect())", { details: { option: "transaction" } });
    }
    return this.#send(transaction as Queryable, messages);
  }

  async #send(on: Queryable, messages: readonly Envelope[]): Promise<SendReceipt[]> {
    if (messages.length === 0) return [];
    let batch = JSON.stringify(messages);
    if (UNSAFE_ESCAPE.test(batch)) batch = JSON.stringify(messages.map((m) => ({ ...m, payload: undefined, headers: undefined, p: JSON.stringify(m.payload), h: JSON.stringify(m.headers) })));
    const rows = await this.#run<{ id: string; channel: string }>("sending", this.#sql.send, [batch], on);
    if (on === this.#pool && rows.length > 0) this.#wakeReceivers(rows);
    const inserted = new Set(rows.map((r) => r.id));
    if (inserted.size === messages.length) return messages.map((m) => ({ id: m.id, deduplicated: false }));
    const keys = [...new Set(messages.filter((m) => !inserted.has(m.id) && m.dedupKey !== null).map((m) => m.dedupKey!))];
    const holders = new Map<string, string>();
    if (keys.length > 0) {
      for (const r of await this.#run<{ dedup_key: string; id: string }>("looking up dedup keys", this.#sql.dedupHolders, [keys], on)) {
        if (!holders.has(r.dedup_key)) holders.set(r.dedup_key, r.id);
      }
    }
    const claimed = new Set<string>();
    return messages.map((m) => {
      if (inserted.has(m.id) && !claimed.has(m.id)) {
        claimed.add(m.id);
        return { id: m.id, deduplicated: false };
      }
      const holder = m.dedupKey === null ? undefined : holders.get(m.dedupKey);
      return { id: holder ?? m.id, deduplicated: true };
    });
  }

  async receive(request: ReceiveRequest): Promise<Delivery[]> {
    this.#checkOpen();
    const channels = [...new Set(request.channels)];
    for (const c of channels) assertChannel(c);
    const max = Math.floor(request.max);
    if (channels.length === 0 || !(max > 0)) return [];
    const leaseMs = Math.max(1, request.leaseMs);
    const deadline = performance.now() + Math.max(0, request.waitMs);
    const signal = ReadAhead.applies(request) ? request.signal! : undefined;
    if (signal) {
      const held = await this.#ahead.take(channels, max, leaseMs, signal);
      if (held.length > 0) return held;
    }
    const key = channels.join("\u0000");
    for (;;) {
      const waiter = request.waitMs > 0 ? this.#notifier.add(channels) : undefined;
      try {
        if (waiter) await this.#ready();
        // The last lease of these channels found nothing more due, and nothing has woken
        // them since: wait for a wake-up or the next due time instead of asking again.
        let idleFor = waiter ? this.#idleFor(key) : 0;
        if (idleFor <= 0) {
          const got = signal
            ? await this.#ahead.lease(channels, max, leaseMs, signal)
            : (await this.#lease(channels, max, leaseMs)).map((l) => l.delivery);
          if (got.length > 0) return got;
          if (!waiter || this.#closed || request.signal?.aborted) return [];
          if (waiter.woken) continue;
          idleFor = this.#idleFor(key);
        }
        const left = deadline - performance.now();
        if (left <= 0) return [];
        // +1 ms: wake just after the due time, never before it.
        await waiter!.sleep(Math.min(left, idleFor + 1), request.signal);
        if (this.#closed || request.signal?.aborted) return [];
      } finally {
        waiter?.dispose();
      }
    }
  }

  /**
   * How long the channels `key` may sleep before they have work (ms; 0 when they
   * must lease now): set by a lease that took fewer rows than it asked for, from the
   * time its statement found the next live row due, and void as soon as anything
   * wakes a channel here (a send or release of this process, a NOTIFY, a reconnect).
   * Never trusted for more than {@link IDLE_TRUST_MS}, as a missed NOTIFY would be.
   */
  #idleFor(key: string): number {
    const idle = this.#short.get(key);
    if (!idle || idle.until === 0 || idle.wakes !== this.#notifier.wakes || !this.#notifier.listening) return 0;
    return Math.max(0, idle.until - performance.now());
  }

  async #ready(): Promise<void> {
    try {
      await this.#notifier.ready();
    } catch (err) {
      throw mapPgError(err, "listening for work", this.schema);
    }
  }

  /**
   * Lease up to `max` due rows of `channels`, in delivery order. Where the last lease of
   * these channels came back short (a trickle), the statement also reports when the next
   * row is due, for {@link PostgresTransport.#idleFor}; where it found a backlog, the
   * plain lease is cheaper to plan.
   */
  async #lease(channels: readonly string[], max: number, leaseMs: number): Promise<Leased[]> {
    this.#checkOpen();
    const key = channels.join("\u0000");
    const withWait = this.#short.has(key);
    const wakes = this.#notifier.wakes;
    const asked = performance.now();
    const one = channels.length === 1;
    const statement = withWait ? (one ? this.#sql.receiveOneWait : this.#sql.receiveManyWait) : one ? this.#sql.receiveOne : this.#sql.receiveMany;
    const rows = await this.#run<LeaseRow>("receiving", statement, [one ? channels[0] : channels, max, leaseMs], this.#leasePool);
    const leased: Leased[] = [];
    for (const r of rows) {
      if (r.id !== null) leased.push({ delivery: { message: toEnvelope(r), token: r.token, leaseExpiresAt: r.due_at }, priority: r.priority, wasDue: r.was_due, seq: Number(r.seq) });
    }
    if (leased.length < max) {
      const wait = rows[0]?.wait ?? null;
      this.#short.set(key, wait !== null && wait > 0 ? { wakes, until: asked + Math.min(wait, IDLE_TRUST_MS) } : { wakes: 0, until: 0 });
    } else {
      this.#short.delete(key);
    }
    if (leased.length > 1) leased.sort(byDeliveryOrder);
    return leased;
  }

  /** Give back leases that were read ahead and never handed out. */
  async #release(deliveries: readonly Delivery[]): Promise<void> {
    const { send } = fenceable(deliveries.map((d) => ({ id: d.message.id, token: d.token })));
    if (send.length === 0) return;
    const rows = await this.#run<{ id: string; channel: string }>("releasing read-ahead", this.#sql.release, [send.map((i) => i.id), send.map((i) => i.token)]);
    this.#wakeReceivers(rows);
  }

  /** Run a fenced batch update and map returned ids back to per-item booleans. */
  async #fenced<T extends LeaseRef>(doing: string, items: readonly T[], call: (send: T[]) => Promise<{ id: string }[]>): Promise<boolean[]> {
    this.#checkOpen();
    const out = new Array<boolean>(items.length).fill(false);
    const { send, index } = fenceable(items);
    if (send.length === 0) return out;
    const done = new Set((await call(send)).map((r) => r.id));
    send.forEach((item, k) => {
      if (done.has(item.id)) out[index[k]!] = true;
    });
    return out;
  }

  async ack(items: readonly AckItem[]): Promise<boolean[]> {
    for (const i of items) {
      if (i.status !== undefined && i.status !== "completed" && i.status !== "cancelled") {
        throw new FerryError("INVALID_OPTION", `ack status must be "completed" or "cancelled", got ${JSON.stringify(i.status)}`, { details: { option: "status" } });
      }
    }
    const done = await this.#fenced("acknowledging", items, (send) => {
      if (this.#ackDeletes) {
        return this.#run("acknowledging", this.#sql.ackDelete, [JSON.stringify(send.map((i) => ({ id: i.id, token: i.token }))), send.map((i) => i.id)]);
      }
      const batch = send.map((i) => ({ id: i.id, token: i.token, status: i.status ?? "completed", result: i.result === undefined ? undefined : JSON.stringify(i.result) }));
      return this.#run("acknowledging", this.#sql.ack, [JSON.stringify(batch), send.map((i) => i.id)]);
    });
    if (!this.#ackDeletes) this.#retainer.noteFinished(done);
    return done;
  }

  async retry(items: readonly RetryItem[]): Promise<boolean[]> {
    return this.#fenced("retrying", items, (send) => {
      const batch = send.map((i) => ({ id: i.id, token: i.token, runAt: i.runAt, used: i.attemptUsed, error: i.error ? storedError(i.error) : undefined }));
      return this.#run<{ id: string; channel: string }>("retrying", this.#sql.retry, [JSON.stringify(batch), MAX_ERROR_HISTORY, send.map((i) => i.id)]).then((rows) => {
        this.#wakeReceivers(rows);
        return rows;
      });
    });
  }

  async deadLetter(items: readonly DeadItem[]): Promise<boolean[]> {
    const done = await this.#fenced("dead-lettering", items, (send) => {
      const batch = send.map((i) => ({ id: i.id, token: i.token, error: storedError(i.error) }));
      return this.#run("dead-lettering", this.#sql.deadLetter, [JSON.stringify(batch), MAX_ERROR_HISTORY, send.map((i) => i.id)]);
    });
    this.#retainer.noteFinished(done);
    return done;
  }

  async extend(items: readonly LeaseRef[], leaseMs: number): Promise<boolean[]> {
    return this.#fenced("extending leases", items, (send) =>
      this.#run("extending leases", this.#sql.extend, [send.map((i) => i.id), send.map((i) => i.token), Math.max(1, leaseMs)]),
    );
  }

  /** The server process id of the LISTEN connection, if it is open (diagnostics). */
  listenerPid(): Promise<number | undefined> {
    return this.#notifier.backendPid();
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * After a commit on our own pool, wake this process's receivers of the channels
   * that got work at once, and NOTIFY the others, in the
   * background: at most one notify statement in flight, later channels coalesced
   * into the next. A failed notify only delays receivers to their next due time
   * or the end of their wait.
   */
  #wakeReceivers(rows: readonly { channel: string }[]): void {
    if (rows.length === 0) return;
    // This process's own receivers need not wait for the NOTIFY to come back.
    for (const c of new Set(rows.map((r) => r.channel))) this.#notifier.wakeChannel(c);
    if (!this.#notifyAfterCommit) return;
    for (const r of rows) this.#pendingNotify.add(r.channel);
    this.#notifying ??= this.#flushNotify();
  }

  async #flushNotify(): Promise<void> {
    while (this.#pendingNotify.size > 0) {
      const channels = [...this.#pendingNotify];
      this.#pendingNotify.clear();
      try {
        await this.#pool.query({ name: this.#sql.notify.name, text: this.#sql.notify.text, values: [this.#notifyChannel, channels] });
      } catch {
        // Receivers still wake at their next due time or the end of their wait.
      }
    }
    this.#notifying = undefined;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // Held read-ahead goes back to waiting before the pool closes.
    await this.#ahead.close();
    await this.#retainer.close();
    this.#closed = true;
    await this.#notifier.close();
    await this.#notifying;
    if (this.#leasePool !== this.#pool) await this.#leasePool.end().catch(() => {});
    if (this.#ownsPool) await this.#pool.end().catch(() => {});
  }

  async counts(): Promise<ChannelCounts[]> {
    this.#checkOpen();
    const byChannel = new Map<string, ChannelCounts>();
    for (const r of await this.#run<{ channel: string; state: MessageState; n: number; delayed: number }>("counting", this.#sql.counts, [])) {
      let c = byChannel.get(r.channel);
      if (!c) byChannel.set(r.channel, (c = { channel: r.channel, waiting: 0, delayed: 0, active: 0, completed: 0, cancelled: 0, dead: 0 }));
      c[r.state] += r.n;
      c.delayed += r.delayed;
    }
    return [...byChannel.values()].sort((a, b) => a.channel.localeCompare(b.channel));
  }

  #record(r: RecordRow): MessageRecord {
    const rec: MessageRecord = { message: toEnvelope(r), state: r.state, errors: r.errors };
    if (r.has_result) rec.result = r.result;
    if (r.started_at !== null) rec.startedAt = r.started_at;
    if (r.finished_at !== null) rec.finishedAt = r.finished_at;
    return rec;
  }

  async list(query: ListQuery): Promise<MessageRecord[]> {
    this.#checkOpen();
    if (!MESSAGE_STATES.includes(query.state)) throw new FerryError("INVALID_OPTION", `state must be one of ${MESSAGE_STATES.join(", ")}`, { details: { option: "state" } });
    const limit = query.limit ?? 50;
    const offset = query.offset ?? 0;
    if (!Number.isInteger(limit) || limit < 0 || !Number.isInteger(offset) || offset < 0) {
      throw new FerryError("INVALID_OPTION", "limit and offset must be whole numbers >= 0", { details: { option: "limit" } });
    }
    const channel = query.channel ?? null;
    const live = query.state === "waiting" || query.state === "active";
    const rows =
      channel === null
        ? await this.#run<RecordRow>("listing", live ? this.#sql.listLiveAll : this.#sql.listFinishedAll, [query.state, limit, offset])
        : await this.#run<RecordRow>("listing", live ? this.#sql.listLive : this.#sql.listFinished, [query.state, channel, limit, offset]);
    return rows.map((r) => this.#record(r));
  }

  async get(id: string): Promise<MessageRecord | null> {
    this.#checkOpen();
    const [row] = await this.#run<RecordRow>("reading a message", this.#sql.get, [id]);
    return row ? this.#record(row) : null;
  }

  async replay(ids: readonly string[]): Promise<string[]> {
    this.#checkOpen();
    let moved: Set<string>;
    try {
      const rows = await this.#run<{ id: string; channel: string }>("replaying", this.#sql.replay, [[...ids]]);
      this.#wakeReceivers(rows);
      moved = new Set(rows.map((r) => r.id));
    } catch (err) {
      // Two dead rows with the same dedup key in one batch collide on the unique index: go one by one.
      if ((err as FerryError).details?.sqlstate !== "23505") throw err;
      moved = new Set();
      for (const id of ids) {
        const rows = await this.#run<{ id: string; channel: string }>("replaying", this.#sql.replay, [[id]]);
        this.#wakeReceivers(rows);
        for (const r of rows) moved.add(r.id);
      }
    }
    return firstOf(ids, moved);
  }

  async discard(ids: readonly string[]): Promise<string[]> {
    this.#checkOpen();
    const removed = new Set((await this.#run<{ id: string }>("discarding", this.#sql.discard, [[...ids]])).map((r) => r.id));
    return firstOf(ids, removed);
  }

  /**
   * Enforce the retention rules now, as the background does about once a second while
   * messages finish. Returns rows deleted (0 while another process holds the schema's
   * retention lock). For tests and maintenance scripts; nothing needs to call it.
   */
  enforceRetention(): Promise<number> {
    this.#checkOpen();
    return this.#retainer.run();
  }

  async prune(options: { before: number; states?: readonly MessageState[] }): Promise<number> {
    this.#checkOpen();
    const states = (options.states ?? ["completed", "cancelled"]).filter((s) => FINISHED.includes(s));
    if (states.length === 0 || !Number.isFinite(options.before)) return 0;
    let total = 0;
    for (;;) {
      const n = (await this.#run("pruning", this.#sql.prune, [states, options.before, PRUNE_BATCH])).length;
      total += n;
      if (n < PRUNE_BATCH) return total;
    }
  }

  async pause(channel: string): Promise<void> {
    this.#checkOpen();
    await this.#run("pausing", this.#sql.pause, [assertChannel(channel)]);
    this.#ahead.releaseChannel(channel);
  }

  async resume(channel: string): Promise<void> {
    this.#checkOpen();
    await this.#run("resuming", this.#sql.resume, [assertChannel(channel), this.#notifyChannel]);
    this.#notifier.wakeChannel(channel);
  }

  async paused(): Promise<string[]> {
    this.#checkOpen();
    return (await this.#run<{ channel: string }>("listing paused channels", this.#sql.paused, [])).map((r) => r.channel);
  }
}
