/**
 * Waiting for work without polling. Senders push a wake-up token onto a
 * channel's capped list (`P:n:CH`) in the same script that stores the message;
 * an idle receiver blocks in BLPOP on the lists of its channels, on a
 * connection of its own, for at most the time until the next due message.
 * A token pushed while nobody is blocked stays in the list, so a receiver that
 * was between its receive script and its BLPOP still wakes at once.
 */
import type { Redis } from "ioredis";
import { ConnectionMonitor } from "./redis-health.ts";
import type { WarningHandler } from "./redis-options.ts";

/** A pool of blocking connections, one per concurrent wait. */
export class BlockingWaiter {
  #idle: Redis[] = [];
  #busy = new Set<Redis>();
  #monitors = new Map<Redis, ConnectionMonitor>();
  #closed = false;
  #lastError = "";

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
    return conn;
  }

  #drop(conn: Redis): void {
    this.#monitors.get(conn)?.stop();
    this.#monitors.delete(conn);
    conn.disconnect();
  }

  /**
   * Block until a wake-up token arrives on one of `channels`, `ms` passes,
   * `signal` aborts or the waiter closes. Never rejects. Returns false when the
   * wait was cut short by a lost connection or a refused command.
   */
  async wait(channels: readonly string[], ms: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#closed || signal?.aborted) return true;
    const conn = this.#acquire();
    this.#busy.add(conn);
    const onAbort = () => this.#drop(conn);
    signal?.addEventListener("abort", onAbort, { once: true });
    // A BLPOP cut by a lost connection is not resent and never settles: the
    // connection's close ends the wait instead.
    let onClose: () => void = () => {};
    const closed = new Promise<void>((resolve) => (onClose = resolve));
    conn.once("close", onClose);
    let ok = true;
    try {
      const keys = channels.map((ch) => `${this.prefix}:n:${ch}`);
      // BLPOP takes seconds as a decimal; 0 would mean forever.
      const woke = await Promise.race([conn.blpop(...keys, Math.max(ms, 1) / 1000).then(() => true), closed.then(() => false)]);
      if (!woke) ok = false;
    } catch (err) {
      // A cut connection or an abort: the caller runs its receive script again.
      ok = false;
      const text = (err as Error).message;
      if (!this.#closed && !signal?.aborted && !/Connection is closed|Stream isn't writeable/.test(text) && text !== this.#lastError) {
        this.#lastError = text;
        this.warn(`ferry redis: a blocking wait on ${this.target} failed: ${text}; receives fall back to short pauses until it works`);
      }
    } finally {
      conn.off("close", onClose);
      signal?.removeEventListener("abort", onAbort);
      this.#busy.delete(conn);
      if (this.#closed || signal?.aborted || conn.status === "end") this.#drop(conn);
      else this.#idle.push(conn);
    }
    return ok || this.#closed || signal?.aborted === true;
  }

  /** Disconnect every blocking connection, ending their waits. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const conn of [...this.#idle, ...this.#busy]) this.#drop(conn);
    this.#idle = [];
    this.#busy.clear();
  }
}
