/**
 * One AMQP connection with two channels (a confirm channel for publishing, a
 * plain one for consuming and acking) that comes back by itself after the
 * broker restarts or the network drops, saying so loudly.
 *
 * Every (re)connection has a new `generation`; anything tied to an older one
 * (delivery tags, leases, consumers) is void, which is how stale acks are fenced.
 */
import amqp, { type Channel, type ChannelModel, type ConfirmChannel } from "amqplib";
import { FerryError } from "../../core/errors.ts";
import { redactUrl } from "../registry.ts";
import type { AmqpLogger } from "./amqp-options.ts";

/** The live channels of one generation. */
export interface Link {
  generation: number;
  model: ChannelModel;
  publish: ConfirmChannel;
  consume: Channel;
  /** The broker's version, from the connection's server properties. */
  serverVersion: string;
  /** Aborted when this link is lost: calls still waiting on it give up. */
  lost: AbortSignal;
  /** The connection's socket, to cork while a batch is written (see {@link corked}). */
  socket?: { cork(): void; uncork(): void };
}

/**
 * Run `write` with the socket corked until the next turn of the event loop, so
 * the frames of a batch (amqplib writes them on later ticks) leave in one write:
 * the socket has Nagle's algorithm off, which would otherwise send each alone.
 */
export function corked(link: Link, write: () => void): void {
  const socket = link.socket;
  if (!socket) return write();
  socket.cork();
  try {
    write();
  } finally {
    setImmediate(() => socket.uncork());
  }
}

/** Per lost-signal, the calls waiting on its link: one abort listener per link, however many calls wait. */
const waiting = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Wait for `promise`, but fail as soon as `link` is lost (amqplib leaves calls
 * on a dead socket pending until its heartbeat notices).
 */
export function onLink<T>(link: Link, promise: Promise<T>): Promise<T> {
  const signal = link.lost;
  if (signal.aborted) return Promise.reject(new Error("connection lost"));
  let calls = waiting.get(signal);
  if (!calls) {
    const set = (calls = new Set());
    waiting.set(signal, set);
    signal.addEventListener("abort", () => {
      for (const lost of set) lost();
      set.clear();
    }, { once: true });
  }
  const pending = calls;
  return new Promise<T>((resolve, reject) => {
    const lost = () => reject(new Error("connection lost"));
    pending.add(lost);
    promise.then(
      (v) => {
        pending.delete(lost);
        resolve(v);
      },
      (err: unknown) => {
        pending.delete(lost);
        reject(err);
      },
    );
  });
}

/** Options of {@link AmqpConnection}. */
export interface AmqpConnectionOptions {
  url: string;
  logger: AmqpLogger;
  /** Called when a link is lost (before reconnecting). */
  onLost: (generation: number) => void;
  /** Called with each new link after a reconnection (not the first). */
  onRestored: (link: Link) => Promise<void>;
}

const BACKOFF_MS = [100, 250, 500, 1000, 2000, 5000];

/** A self-healing connection. */
export class AmqpConnection {
  readonly #options: AmqpConnectionOptions;
  #link: Link | undefined;
  #generation = 0;
  #closed = false;
  #waiters = new Set<() => void>();
  #reconnecting = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #aborts = new WeakMap<Link, AbortController>();

  constructor(options: AmqpConnectionOptions) {
    this.#options = options;
  }

  /**
   * Connect for the first time.
   * @throws FerryError `TRANSPORT_UNAVAILABLE`
   */
  async open(): Promise<Link> {
    try {
      this.#link = await this.#connect();
      return this.#link;
    } catch (err) {
      throw new FerryError("TRANSPORT_UNAVAILABLE", `cannot connect to RabbitMQ at ${redactUrl(this.#options.url)}: ${(err as Error).message}; check that the broker runs and the URL, user and vhost are right`, { cause: err });
    }
  }

  /** The current link, if connected. */
  get link(): Link | undefined {
    return this.#link;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The live link, waiting up to `timeoutMs` for a reconnection.
   * @throws FerryError `TRANSPORT_CLOSED`, `TRANSPORT_UNAVAILABLE`
   */
  async ready(timeoutMs: number, signal?: AbortSignal): Promise<Link> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#closed) throw new FerryError("TRANSPORT_CLOSED", "the AMQP transport is closed; create a new one to continue");
      if (this.#link) return this.#link;
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted) {
        throw new FerryError("TRANSPORT_UNAVAILABLE", `RabbitMQ at ${redactUrl(this.#options.url)} has been unreachable for ${timeoutMs} ms; Ferry keeps reconnecting`);
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          signal?.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#waiters.add(done);
        signal?.addEventListener("abort", done, { once: true });
      });
    }
  }

  async #connect(): Promise<Link> {
    // noDelay: without it Nagle's algorithm holds a small write (a publish, an ack) while an
    // earlier one is unacknowledged, and the peer's delayed ACK makes that up to 40 ms
    const model = await amqp.connect(this.#options.url, { noDelay: true, clientProperties: { connection_name: `ferry-${process.pid}` } });
    try {
      const publish = await model.createConfirmChannel();
      const consume = await model.createChannel();
      const generation = ++this.#generation;
      const props = (model.connection as unknown as { serverProperties?: { version?: string } }).serverProperties;
      const lostController = new AbortController();
      const connection = model.connection as unknown as { stream?: NodeJS.EventEmitter & { cork?(): void; uncork?(): void }; onSocketError?: (err: Error) => void };
      const stream = connection.stream;
      const socket = typeof stream?.cork === "function" && typeof stream.uncork === "function" ? { cork: () => stream.cork!(), uncork: () => stream.uncork!() } : undefined;
      const link: Link = { generation, model, publish, consume, serverVersion: String(props?.version ?? "unknown"), lost: lostController.signal, socket };
      this.#aborts.set(link, lostController);
      const lost = (what: string) => (err?: Error) => this.#lost(link, what, err);
      model.on("error", () => {}); // a 'close' follows and is handled there
      model.on("close", lost("connection"));
      // amqplib notices a dead socket only by missed heartbeats; a closed socket is lost at once
      // (amqplib's own handler for a socket error also fails pending calls and stops its heartbeat timer)
      connection.stream?.on("close", () => {
        const err = new Error("socket closed");
        connection.onSocketError?.(err);
        lost("socket")(err);
      });
      publish.on("error", () => {});
      consume.on("error", () => {});
      publish.on("close", lost("publish channel"));
      consume.on("close", lost("consume channel"));
      model.on("blocked", (reason: string) => this.#options.logger(`RabbitMQ blocked publishing: ${reason}`, { url: redactUrl(this.#options.url) }));
      model.on("unblocked", () => this.#options.logger("RabbitMQ unblocked publishing", { url: redactUrl(this.#options.url) }));
      return link;
    } catch (err) {
      await model.close().catch(() => {});
      throw err;
    }
  }

  #lost(link: Link, what: string, err?: Error): void {
    if (this.#link !== link) return; // already handled for this generation
    this.#link = undefined;
    this.#aborts.get(link)?.abort();
    this.#options.onLost(link.generation);
    if (this.#closed) return;
    this.#options.logger(`lost the RabbitMQ ${what} (generation ${link.generation}): ${err?.message ?? "closed"}; unacked deliveries go back to their queues; reconnecting`, { url: redactUrl(this.#options.url) });
    link.model.close().catch(() => {});
    this.#reconnect(0);
  }

  #reconnect(attempt: number): void {
    if (this.#closed || this.#reconnecting) return;
    this.#reconnecting = true;
    const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!;
    this.#retryTimer = setTimeout(async () => {
      this.#retryTimer = undefined;
      try {
        const link = await this.#connect();
        this.#reconnecting = false;
        if (this.#closed) {
          await link.model.close().catch(() => {});
          return;
        }
        this.#link = link;
        await this.#options.onRestored(link);
        this.#options.logger(`reconnected to RabbitMQ (generation ${link.generation}) after ${attempt + 1} attempt(s)`, { url: redactUrl(this.#options.url) });
        for (const w of [...this.#waiters]) w();
      } catch (err) {
        this.#reconnecting = false;
        if (this.#closed) return;
        if (this.#link) {
          // restoring failed on a fresh link: drop it and start over
          const failed = this.#link;
          this.#lost(failed, "link while restoring", err as Error);
          return;
        }
        this.#options.logger(`reconnecting to RabbitMQ failed (attempt ${attempt + 1}): ${(err as Error).message}; retrying`, { url: redactUrl(this.#options.url) });
        this.#reconnect(attempt + 1);
      }
    }, delay);
  }

  /** Close for good. Idempotent. Unacked deliveries go back to their queues. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    for (const w of [...this.#waiters]) w();
    const link = this.#link;
    this.#link = undefined;
    if (link) {
      this.#aborts.get(link)?.abort();
      this.#options.onLost(link.generation);
      // close the channels first: a channel's close waits for the broker's close-ok, so acks
      // written just before reach it; closing the connection at once can lose them (the
      // message then comes back although it was acked)
      await Promise.all([link.consume.close().catch(() => {}), link.publish.close().catch(() => {})]);
      await link.model.close().catch(() => {});
    }
  }
}
