/**
 * Waiting for work without polling. Senders push a wake-up token onto a
 * channel's capped list (`P:n:CH`) in the same script that stores the message;
 * an idle receiver blocks in BLPOP on the lists of its channels, on a
 * connection of its own, for at most the time until the next due message.
 * A token pushed while nobody is blocked stays in the list, so a receiver that
 * was between its receive script and its BLPOP still wakes at once.
 *
 * The receive script is sent right behind the BLPOP on the same
 * connection, in the same write. Redis runs a client's commands in order and holds the second
 * until the first unblocks, so the script runs the moment the receiver wakes,
 * and the deliveries come back with the wake-up: no second round trip.
 *
 * A wait that should end at a due time (a delayed message or a lease end) is
 * also timed here: Redis checks blocking timeouts only on its own timer (`hz`,
 * 10 per second by default), so a BLPOP timeout alone ends up to 100 ms late.
 * A local timer armed for the due time unblocks the connection from the
 * command connection (`CLIENT UNBLOCK id TIMEOUT`); the BLPOP timeout stays as
 * the bound when that command is refused. An idle wait with nothing due arms
 * no timer, so idle receivers send nothing.
 */
import type { Redis } from "ioredis";
import { ConnectionMonitor } from "./redis-health.ts";
import type { WarningHandler } from "./redis-options.ts";
import { runScript } from "./redis-scripts.ts";

/** How often an unblock that found no blocked command is tried again (1 ms apart). */
const UNBLOCK_RETRIES = 20;

/** The outcome of one {@link BlockingWaiter.wait}. */
export interface WaitResult {
  /** False when the wait was cut short by a lost connection or a refused command. */
  ok: boolean;
  /** The reply of the receive script run right after the wake-up, when it ran. */
  reply?: unknown[];
}

/** A pool of blocking connections, one per concurrent wait. */
export class BlockingWaiter {
  #idle: Redis[] = [];
  #busy = new Set<Redis>();
  #monitors = new Map<Redis, ConnectionMonitor>();
  /** Each blocking connection's client id (for CLIENT UNBLOCK), read on first use and after a reconnect. */
  #ids = new Map<Redis, Promise<number | undefined>>();
  #closed = false;
  #lastError = "";
  #unblockRefused = false;

  /**
   * @param main the command connection, duplicated for each blocking connection
   * @param prefix the key prefix
   * @param target `host:port`, for warnings
   * @param warn where warnings go
   */
  constructor(readonly main: Redis, readonly prefix: string, readonly target: string, readonly warn: WarningHandler) {}

  #acquire(): Redis {
    const reused = this.#idle.pop();
    if (reused) return reused;
    // Not resent after a reconnect: a BLPOP cut by a lost connection rejects, and
    // the receive loop runs its script again instead of waiting out a stale timeout.
    const conn = this.main.duplicate({ autoResendUnfulfilledCommands: false, connectionName: `${this.main.options.connectionName ?? "ferry"}-wait` });
    this.#monitors.set(conn, new ConnectionMonitor(conn, this.target, this.warn, "blocking connection"));
    // A reconnect gives the connection a new client id.
    conn.on("close", () => this.#ids.delete(conn));
    return conn;
  }

  #drop(conn: Redis): void {
    this.#monitors.get(conn)?.stop();
    this.#monitors.delete(conn);
    this.#ids.delete(conn);
    conn.disconnect();
  }

  /** The connection's client id, asked for before its next command when unknown. */
  #clientId(conn: Redis): Promise<number | undefined> {
    let id = this.#ids.get(conn);
    if (!id) {
      id = (conn.client("ID") as Promise<number>).catch(() => undefined);
      this.#ids.set(conn, id);
    }
    return id;
  }

  /** End a BLPOP now (as a timeout) from the command connection. Never rejects. */
  async #unblock(conn: Redis, attempt = 0): Promise<void> {
    const id = await this.#clientId(conn);
    if (id === undefined || this.#closed) return;
    try {
      const unblocked = await this.main.client("UNBLOCK", id, "TIMEOUT");
      // 0: the BLPOP had not reached Redis yet (a wait of a millisecond or two, a busy machine).
      // Left alone it would sit until Redis' own timeout tick, up to 100 ms late: try again shortly.
      if (unblocked === 0 && attempt < UNBLOCK_RETRIES && this.#busy.has(conn) && !this.#closed) {
        setTimeout(() => void this.#unblock(conn, attempt + 1), 1);
      }
    } catch (err) {
      // A lost connection ends the wait anyway; only a refusal (ACL, renamed command) stops the timers.
      const text = (err as Error).message;
      if (this.#closed || this.#unblockRefused || !/NOPERM|unknown (sub)?command|no permissions/i.test(text)) return;
      this.#unblockRefused = true;
      this.warn(`ferry redis: CLIENT UNBLOCK refused on ${this.target} (${text}); delayed messages and ended leases may be picked up up to ~100 ms late`);
    }
  }

  /**
   * Block until a wake-up token arrives on one of `channels`, `ms` passes,
   * `signal` aborts or the waiter closes, then run the receive script with
   * `receiveArgs` (same connection, no extra round trip). With `timed`, a local
   * timer ends the wait after `ms` (something comes due then) instead of Redis'
   * coarse blocking timeout. Never rejects.
   */
  async wait(channels: readonly string[], ms: number, signal: AbortSignal | undefined, receiveArgs: (string | number)[], timed = false): Promise<WaitResult> {
    if (this.#closed || signal?.aborted) return { ok: true };
    const conn = this.#acquire();
    let timer: NodeJS.Timeout | undefined;
    if (timed && !this.#unblockRefused) {
      void this.#clientId(conn);
      timer = setTimeout(() => void this.#unblock(conn), ms);
    }
    this.#busy.add(conn);
    const onAbort = () => this.#drop(conn);
    signal?.addEventListener("abort", onAbort, { once: true });
    // Commands cut by a lost connection are not resent and never settle: the
    // connection's close ends the wait instead.
    let onClose: () => void = () => {};
    const closed = new Promise<null>((resolve) => (onClose = () => resolve(null)));
    conn.once("close", onClose);
    const result: WaitResult = { ok: true };
    try {
      const keys = channels.map((ch) => `${this.prefix}:n:${ch}`);
      // Both commands go out in one write (the socket corked while ioredis writes them), without
      // an ioredis Pipeline: building one per wait allocates a few KB (a copy of every command
      // method), and at hundreds of wake-ups a second that garbage shows up as GC pauses in the tail.
      const stream = conn.status === "ready" ? conn.stream : undefined;
      let blocked: Promise<unknown>;
      let received: Promise<unknown>;
      stream?.cork();
      try {
        // BLPOP takes seconds as a decimal; 0 would mean forever.
        blocked = conn.blpop(...keys, Math.max(ms, 1) / 1000).then(
          () => undefined,
          (err: unknown) => err,
        );
        received = runScript(conn, "receive", receiveArgs).catch(() => undefined);
      } finally {
        stream?.uncork();
      }
      const replies = await Promise.race([Promise.all([blocked, received]), closed]);
      if (!replies) {
        result.ok = false;
      } else {
        const [blockErr, reply] = replies;
        if (blockErr) throw blockErr;
        if (Array.isArray(reply)) result.reply = reply;
      }
    } catch (err) {
      // A cut connection or an abort: the caller runs its receive script again.
      result.ok = false;
      const text = (err as Error).message;
      if (!this.#closed && !signal?.aborted && !/Connection is closed|Stream isn't writeable/.test(text) && text !== this.#lastError) {
        this.#lastError = text;
        this.warn(`ferry redis: a blocking wait on ${this.target} failed: ${text}; receives fall back to short pauses until it works`);
      }
    } finally {
      clearTimeout(timer);
      conn.off("close", onClose);
      signal?.removeEventListener("abort", onAbort);
      this.#busy.delete(conn);
      if (this.#closed || signal?.aborted || conn.status === "end") this.#drop(conn);
      else this.#idle.push(conn);
    }
    if (this.#closed || signal?.aborted) result.ok = true;
    return result;
  }

  /** Disconnect every blocking connection, ending their waits. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const conn of [...this.#idle, ...this.#busy]) this.#drop(conn);
    this.#idle = [];
    this.#busy.clear();
  }
}
