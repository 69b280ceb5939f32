/**
 * Wake-ups for idle receivers: one connection per transport LISTENs on the
 * schema's notify channel; each NOTIFY names a Ferry channel, and wakes the
 * waiters interested in it. No polling: waiters sleep until a notification,
 * their own next-due timer, an abort, or close.
 */
import type pg from "pg";

/** One sleeping receive. */
export interface Waiter {
  readonly channels: readonly string[];
  /** Set once woken; checked before sleeping so a NOTIFY that raced the query is not lost. */
  woken: boolean;
  wake(): void;
}

/** Options of {@link Notifier}. */
export interface NotifierOptions {
  /** Borrows the listening connection (kept until close). */
  connect: () => Promise<pg.PoolClient>;
  /** The LISTEN channel (`ferry:<schema>`). */
  channel: string;
  /**
   * Backend process ids whose notifications are skipped: the transport's own
   * connections, whose sends wake this process's waiters directly. Waking again
   * on the NOTIFY's echo costs each waiter a receive that finds nothing.
   */
  ownBackends?: ReadonlySet<number>;
}

/** Listens for the schema's notifications and wakes matching waiters. */
export class Notifier {
  readonly #options: NotifierOptions;
  readonly #waiters = new Set<Waiter>();
  #client: pg.PoolClient | undefined;
  #starting: Promise<void> | undefined;
  #wakes = 0;
  #closed = false;

  constructor(options: NotifierOptions) {
    this.#options = options;
  }

  /**
   * Resolve once LISTEN is in place (connecting on first use, or again after the
   * connection dropped). Rejects with the driver's error when it cannot connect.
   */
  ready(): Promise<void> {
    if (this.#client) return Promise.resolve();
    this.#starting ??= this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #start(): Promise<void> {
    const client = await this.#options.connect();
    const onError = () => this.#drop(client, true);
    client.on("error", onError);
    client.on("end", onError);
    client.on("notification", (n: pg.Notification) => {
      if (n.channel === this.#options.channel && !this.#options.ownBackends?.has(n.processId)) this.wakeChannel(n.payload ?? "");
    });
    try {
      await client.query(`LISTEN "${this.#options.channel}"`);
    } catch (err) {
      this.#drop(client, true);
      throw err;
    }
    if (this.#closed) {
      this.#drop(client, true);
      return;
    }
    this.#client = client;
    // A notification may have been missed while not listening: let every waiter look again.
    this.wakeAll();
  }

  /** The server process id of the listening connection, or undefined when not listening (for tests and diagnostics). */
  async backendPid(): Promise<number | undefined> {
    const client = this.#client;
    if (!client) return undefined;
    return (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
  }

  #drop(client: pg.PoolClient, broken: boolean): void {
    if (this.#client === client) this.#client = undefined;
    client.removeAllListeners("notification");
    try {
      client.release(broken ? true : undefined);
    } catch {
      // already released
    }
    this.wakeAll();
  }

  /**
   * A count of wake-ups of any channel (and of reconnects and drops): a caller
   * that read it before a query and finds it unchanged later knows nothing was
   * sent, released or made waiting since, as far as this process can tell.
   */
  get wakes(): number {
    return this.#wakes;
  }

  /** True while the LISTEN connection is up. */
  get listening(): boolean {
    return this.#client !== undefined;
  }

  /** Wake the waiters of a channel now (work this process committed: no need to wait for its NOTIFY). */
  wakeChannel(channel: string): void {
    this.#wakes++;
    for (const w of this.#waiters) if (w.channels.includes(channel)) w.wake();
  }

  /** Wake every waiter (close, reconnect). */
  wakeAll(): void {
    this.#wakes++;
    for (const w of this.#waiters) w.wake();
  }

  /** Register a waiter before querying, so nothing is missed between query and sleep. */
  add(channels: readonly string[]): Waiter & { sleep(ms: number, signal?: AbortSignal): Promise<void>; dispose(): void } {
    let resolveSleep: (() => void) | undefined;
    const waiter = {
      channels,
      woken: false,
      wake() {
        waiter.woken = true;
        resolveSleep?.();
      },
      sleep: (ms: number, signal?: AbortSignal) =>
        new Promise<void>((resolve) => {
          if (waiter.woken || signal?.aborted) return resolve();
          const done = () => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", done);
            resolveSleep = undefined;
            resolve();
          };
          const timer = setTimeout(done, Math.max(0, Math.min(ms, 2_147_000_000)));
          resolveSleep = done;
          signal?.addEventListener("abort", done, { once: true });
        }),
      dispose: () => {
        this.#waiters.delete(waiter);
      },
    };
    this.#waiters.add(waiter);
    return waiter;
  }

  /** Stop listening and wake every waiter. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    if (client) {
      client.removeAllListeners("notification");
      await client.query(`UNLISTEN "${this.#options.channel}"`).catch(() => {});
      client.removeAllListeners("error");
      client.removeAllListeners("end");
      client.on("error", () => {});
      client.release(true);
    }
    await this.#starting?.catch(() => {});
    this.wakeAll();
  }
}
