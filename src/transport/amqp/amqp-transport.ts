/**
 * The RabbitMQ transport: durable quorum queues (classic as an option),
 * publisher confirms per batch, manual acks, a prefetch that follows demand,
 * delays and retries through TTL buckets (no plugin), a dead-letter queue per
 * channel, recovery after a lost connection, and a SQLite run store for what
 * the broker cannot answer (state, counts, listing, results, dedupKey).
 *
 * Leases: a delivery is pushed by the broker into a local buffer and stays
 * unacked; receive() hands buffered deliveries out with a lease that this
 * transport enforces: when it ends without ack/extend, the delivery is nacked
 * with requeue, so the broker delivers it again (attempt + 1, new token). A
 * token is `generation.deliveryTag.counter`: a lease from before a reconnection,
 * an expired or settled one, is refused (false).
 *
 * Attempts: from the run store when it has the message's row (exact); otherwise
 * from AMQP: `x-ferry-attempts` (set when Ferry republishes) plus the quorum
 * queue's `x-delivery-count` (classic queues: `redelivered` counts as one). The
 * broker-side count also counts a buffered delivery returned unleased (on close
 * or connection loss), so without a run store it may run one high, never low.
 */
import type { ConsumeMessage, Message } from "amqplib";
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../../core/envelope.ts";
import { FerryError, isFerryError } from "../../core/errors.ts";
import { assertChannel } from "../../core/names.ts";
import type { AckItem, ChannelCounts, DeadItem, DeadLetterAdmin, Delivery, LeaseRef, ListQuery, MessageRecord, MessageState, ReceiveRequest, RetryItem, SendReceipt, Transport } from "../types.ts";
import { AmqpConnection, onLink, type Link } from "./amqp-connection.ts";
import { optionsFromUrl, resolveOptions, type AmqpTransportOptions, type ResolvedAmqpOptions } from "./amqp-options.ts";
import { scanDeadQueue } from "./dead-letter-scan.ts";
import { RunStore } from "./run-store.ts";
import { amqpPriority, bucketArguments, bucketFor, bucketName, channelQueue, deadQueue, HEADER, queueArguments } from "./topology.ts";

interface Consumer {
  queue: string;
  tag: string;
  prefetch: number;
  generation: number;
  /** Deliveries of this consumer not yet acked or nacked. */
  unsettled: number;
}

/** A delivery held unacked: buffered, then leased. */
interface Held {
  raw: Message;
  envelope: Envelope;
  runAt: number;
  /** Attempts used before this delivery, as the broker's headers tell. */
  priorAttempts: number;
  consumer: Consumer;
  generation: number;
  token: string;
  attempt: number;
  expiresAt: number;
}

export type { AmqpTransportOptions } from "./amqp-options.ts";

/** A message due within this many ms is held in memory until due rather than sent through a delay bucket. */
const HOLD_MS = 50;

/** A Ferry transport over RabbitMQ. Counting, listing and dedupKey need the run store (on by default). */
export class AmqpTransport implements Transport, DeadLetterAdmin {
  readonly kind = "amqp";
  readonly options: ResolvedAmqpOptions;
  /** Counts per channel and state (only with a run store). */
  counts?: () => Promise<ChannelCounts[]>;
  /** Messages in one state (only with a run store). */
  list?: (query: ListQuery) => Promise<MessageRecord[]>;
  /** One message's record (only with a run store). */
  get?: (id: string) => Promise<MessageRecord | null>;
  /** Delete finished records (only with a run store). */
  prune?: (options: { before: number; states?: readonly MessageState[] }) => Promise<number>;

  readonly #conn: AmqpConnection;
  readonly #store: RunStore | undefined;
  #buffers = new Map<string, Held[]>();
  #leases = new Map<string, Held>();
  #consumers = new Map<string, Consumer>();
  #wanted = new Map<string, number>();
  #declared = new Map<string, Promise<void>>();
  #declaredEver = new Set<string>();
  #wakers = new Set<() => void>();
  #consumerLock: Promise<unknown> = Promise.resolve();
  #counter = 0;
  #leaseTimer: NodeJS.Timeout | undefined;
  #leaseTimerAt = Infinity;
  #hops: Held[] = [];
  #holds = new Set<NodeJS.Timeout>();
  #wakeScheduled = false;
  #closed = false;

  /** Use {@link AmqpTransport.connect} or {@link AmqpTransport.fromUrl}. */
  private constructor(options: ResolvedAmqpOptions) {
    this.options = options;
    this.#conn = new AmqpConnection({ url: options.url, logger: options.logger, onLost: () => this.#onLost(), onRestored: (link) => this.#onRestored(link) });
    if (options.runStore !== false) {
      const store = (this.#store = new RunStore(options.runStore, options.prefix));
      this.counts = async () => store.counts(Date.now());
      this.list = async (query) => store.list(query);
      this.get = async (id) => store.get(id);
      this.prune = async ({ before, states }) => store.prune(before, states ?? ["completed", "cancelled"]);
    }
  }

  /**
   * Connect to the broker.
   * @throws FerryError `TRANSPORT_UNAVAILABLE`, `INVALID_OPTION`
   */
  static async connect(options: AmqpTransportOptions): Promise<AmqpTransport> {
    const t = new AmqpTransport(resolveOptions(options));
    try {
      await t.#conn.open();
    } catch (err) {
      t.#store?.close();
      throw err;
    }
    return t;
  }

  /** Build from `amqp://user:pass@host:port/vhost?queueType=&prefix=&runStore=&prefetch=` (see {@link AmqpTransportOptions}). */
  static fromUrl(url: URL): Promise<AmqpTransport> {
    return AmqpTransport.connect(optionsFromUrl(url));
  }

  /** The broker's version (from the connection's server properties), or undefined while disconnected. */
  get serverVersion(): string | undefined {
    return this.#conn.link?.serverVersion;
  }

  /** Names of the queues and exchanges this instance declared (for tests and tooling that clean up). */
  declaredNames(): string[] {
    return [...this.#declaredEver];
  }

  /** The underlying connection of the current generation (for fault-injection tests). */
  get link(): Link | undefined {
    return this.#conn.link;
  }

  #checkOpen(): void {
    if (this.#closed) throw new FerryError("TRANSPORT_CLOSED", "the AMQP transport is closed; create a new one to continue");
  }

  async #ready(): Promise<Link> {
    return this.#conn.ready(this.options.reconnectTimeoutMs);
  }

  // ---- topology -------------------------------------------------------------

  #declare(link: Link, name: string, make: (ch: import("amqplib").Channel) => Promise<unknown>): Promise<void> {
    const key = `${link.generation}|${name}`;
    let p = this.#declared.get(key);
    if (!p) {
      this.#declaredEver.add(name);
      p = (async () => {
        const ch = await link.model.createChannel();
        ch.on("error", () => {});
        try {
          await make(ch);
        } catch (err) {
          this.#declared.delete(key);
          throw new FerryError("CONFIG_INVALID", `RabbitMQ refused to declare ${JSON.stringify(name)}: ${(err as Error).message}; an existing queue with other arguments (e.g. classic vs quorum) must be deleted or use another ?prefix=`, { cause: err });
        }
        await ch.close().catch(() => {});
      })();
      this.#declared.set(key, p);
    }
    return p;
  }

  #ensureChannel(link: Link, channel: string): Promise<void> {
    const args = queueArguments(this.options.queueType);
    return this.#declare(link, channelQueue(this.options.prefix, channel), async (ch) => {
      await ch.assertQueue(channelQueue(this.options.prefix, channel), args);
      await ch.assertQueue(deadQueue(this.options.prefix, channel), args);
      this.#declaredEver.add(deadQueue(this.options.prefix, channel));
    });
  }

  #ensureBucket(link: Link, k: number): Promise<void> {
    const name = bucketName(this.options.prefix, k);
    return this.#declare(link, name, async (ch) => {
      await ch.assertExchange(name, "fanout", { durable: true });
      await ch.assertQueue(name, bucketArguments(this.options.queueType, k));
      await ch.bindQueue(name, name, "");
    });
  }

  /** Publish one copy (to its channel queue, or to a delay bucket when not due). */
  #publish(link: Link, content: Buffer, e: Envelope, runAt: number, attempts: number, bucket: number | undefined, done: (err: unknown) => void): void {
    const props: import("amqplib").Options.Publish = { persistent: true };
    // the body carries runAt and attempt as sent; headers only when a copy differs from it
    if (runAt !== e.runAt || attempts !== e.attempt) props.headers = attempts > 0 ? { [HEADER.runAt]: runAt, [HEADER.attempts]: attempts } : { [HEADER.runAt]: runAt };
    if (this.options.queueType === "classic") props.priority = amqpPriority(e.priority);
    const queue = channelQueue(this.options.prefix, e.channel);
    if (bucket === undefined) link.publish.publish("", queue, content, props, done);
    else link.publish.publish(bucketName(this.options.prefix, bucket), queue, content, props, done);
  }

  /** Publish a batch with confirms: `each` publishes with the callback it is given; resolves when all are confirmed. */
  #confirmed(count: number, each: (done: (err: unknown) => void) => void): Promise<void> {
    if (count === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let left = count;
      let failed = false;
      const done = (err: unknown) => {
        if (failed) return;
        if (err) {
          failed = true;
          reject(err instanceof Error ? err : new Error(String(err ?? "nacked")));
        } else if (--left === 0) resolve();
      };
      try {
        each(done);
      } catch (err) {
        done(err ?? new Error("publish failed"));
      }
    });
  }

  /** The delay bucket for a copy due at `runAt`, or undefined to publish straight to its queue (the consumer holds the last {@link HOLD_MS}). */
  #route(runAt: number, now: number): number | undefined {
    return runAt - now > HOLD_MS ? bucketFor(runAt - now) : undefined;
  }

  #buckets(link: Link, runAts: Iterable<number>, now: number): Promise<void[]> {
    const ks = new Set<number>();
    for (const at of runAts) {
      const k = this.#route(at, now);
      if (k !== undefined) ks.add(k);
    }
    return Promise.all([...ks].map((k) => this.#ensureBucket(link, k)));
  }

  // ---- send -----------------------------------------------------------------

  async send(messages: readonly Envelope[]): Promise<SendReceipt[]> {
    this.#checkOpen();
    if (messages.length === 0) return [];
    const bodies = messages.map(encodeEnvelope);
    const receipts = this.#store ? this.#store.insert(messages, bodies) : messages.map((m) => ({ id: m.id, deduplicated: false }));
    const fresh: number[] = [];
    for (let i = 0; i < messages.length; i++) if (!receipts[i]!.deduplicated) fresh.push(i);
    try {
      const link = await this.#ready();
      const channels = new Set(fresh.map((i) => messages[i]!.channel));
      const now = Date.now();
      await onLink(link, Promise.all([...[...channels].map((c) => this.#ensureChannel(link, c)), this.#buckets(link, fresh.map((i) => messages[i]!.runAt), now)]));
      await onLink(link, this.#confirmed(fresh.length, (done) => {
        for (const i of fresh) {
          const m = messages[i]!;
          this.#publish(link, Buffer.from(bodies[i]!), m, m.runAt, 0, this.#route(m.runAt, now), done);
        }
      }));
    } catch (err) {
      this.#store?.remove(fresh.map((i) => messages[i]!.id));
      throw this.#unavailable(err, "send");
    }
    return receipts;
  }

  #unavailable(err: unknown, what: string): FerryError {
    if (isFerryError(err)) return err;
    if (this.#closed) return new FerryError("TRANSPORT_CLOSED", "the AMQP transport was closed during the call", { cause: err });
    return new FerryError("TRANSPORT_UNAVAILABLE", `RabbitMQ ${what} failed: ${(err as Error)?.message ?? String(err)}; nothing was confirmed, so it is safe to retry`, { cause: err });
  }

  // ---- consuming ------------------------------------------------------------

  /** Make sure each queue has a consumer whose prefetch covers leases held plus `max`. */
  #consumersReady(link: Link, queues: readonly string[], max: number): boolean {
    for (const queue of queues) {
      const c = this.#consumers.get(queue);
      if (!c || c.generation !== link.generation || c.prefetch < this.#wantedPrefetch(queue, max)) return false;
    }
    return true;
  }

  async #ensureConsumers(link: Link, channels: readonly string[], queues: readonly string[], max: number): Promise<void> {
    await Promise.all(channels.map((c) => this.#ensureChannel(link, c)));
    for (const queue of queues) {
      const c = this.#consumers.get(queue);
      const want = this.#wantedPrefetch(queue, max);
      if (c && c.generation === link.generation && c.prefetch >= want) continue;
      this.#wanted.set(queue, Math.max(want, this.#wanted.get(queue) ?? 0));
      await this.#withConsumerLock(() => this.#startConsumer(link, queue));
    }
  }

  #wantedPrefetch(queue: string, max: number): number {
    if (this.options.prefetch > 0) return this.options.prefetch;
    let held = 0;
    const c = this.#consumers.get(queue);
    if (c) held = Math.max(0, c.unsettled - (this.#buffers.get(queue)?.length ?? 0));
    const want = Math.min(this.options.maxPrefetch, held + Math.max(1, max));
    return Math.min(this.options.maxPrefetch, 2 ** Math.ceil(Math.log2(want)));
  }

  #withConsumerLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#consumerLock.then(fn, fn);
    this.#consumerLock = run.catch(() => {});
    return run;
  }

  async #startConsumer(link: Link, queue: string): Promise<void> {
    const want = this.#wanted.get(queue) ?? 1;
    const old = this.#consumers.get(queue);
    if (old && old.generation === link.generation && old.prefetch >= want) return;
    if (this.#closed || this.#conn.link !== link) return;
    await onLink(link, link.consume.prefetch(want));
    const consumer: Consumer = { queue, tag: "", prefetch: want, generation: link.generation, unsettled: 0 };
    const ok = await onLink(link, link.consume.consume(queue, (raw) => this.#arrive(consumer, raw), { noAck: false }));
    consumer.tag = ok.consumerTag;
    this.#consumers.set(queue, consumer);
    // the old consumer stops; its unacked deliveries stay held on the channel
    if (old && old.generation === link.generation) await onLink(link, link.consume.cancel(old.tag));
  }

  #arrive(consumer: Consumer, raw: ConsumeMessage | null): void {
    if (raw === null) {
      this.options.logger(`RabbitMQ cancelled the consumer of ${consumer.queue} (queue deleted?)`, { queue: consumer.queue });
      if (this.#consumers.get(consumer.queue) === consumer) this.#consumers.delete(consumer.queue);
      return;
    }
    const link = this.#conn.link;
    if (!link || link.generation !== consumer.generation) return;
    consumer.unsettled++;
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(raw.content.toString("utf8"));
    } catch (err) {
      this.#poison(link, consumer, raw, err as Error);
      return;
    }
    const headers = raw.properties.headers ?? {};
    const runAt = typeof headers[HEADER.runAt] === "number" ? (headers[HEADER.runAt] as number) : envelope.runAt;
    const redeliveries = typeof headers["x-delivery-count"] === "number" ? (headers["x-delivery-count"] as number) : raw.fields.redelivered ? 1 : 0;
    const priorAttempts = (typeof headers[HEADER.attempts] === "number" ? (headers[HEADER.attempts] as number) : envelope.attempt) + redeliveries;
    const held: Held = { raw, envelope, runAt, priorAttempts, consumer, generation: link.generation, token: "", attempt: 0, expiresAt: 0 };
    const remaining = runAt - Date.now();
    if (remaining > HOLD_MS) {
      this.#hop(held);
      return;
    }
    this.#holdUntilDue(held);
  }

  /** The last stretch of a delay is held here (a bucket hop costs more than it waits); never handed out before `runAt`. */
  #holdUntilDue(held: Held): void {
    const remaining = held.runAt - Date.now();
    if (remaining <= 0) return this.#buffer(held);
    // timers run on a monotonic clock and may fire a little before the wall clock reaches runAt: check again
    const timer = setTimeout(() => {
      this.#holds.delete(timer);
      this.#holdUntilDue(held);
    }, remaining);
    this.#holds.add(timer);
  }

  #buffer(held: Held): void {
    if (this.#conn.link?.generation !== held.generation) return;
    const consumer = held.consumer;
    let buf = this.#buffers.get(consumer.queue);
    if (!buf) this.#buffers.set(consumer.queue, (buf = []));
    buf.push(held);
    if (!this.#wakeScheduled && this.#wakers.size > 0) {
      // wake once the whole socket read has been buffered, so a waiting receive takes a batch
      this.#wakeScheduled = true;
      setImmediate(() => {
        this.#wakeScheduled = false;
        for (const w of this.#wakers) w();
      });
    }
  }

  /** A message that is not Ferry's wire format goes straight to the channel's dead-letter queue. */
  #poison(link: Link, consumer: Consumer, raw: Message, err: Error): void {
    const dead = `${consumer.queue}:dead`;
    this.options.logger(`a message on ${consumer.queue} is not in Ferry's wire format and goes to ${dead}: ${err.message}`, { messageId: raw.properties.messageId });
    const error = JSON.stringify({ at: Date.now(), attempt: 0, code: "INVALID_MESSAGE", message: err.message });
    this.#confirmed(1, (done) => link.publish.publish("", dead, raw.content, { ...raw.properties, persistent: true, headers: { ...raw.properties.headers, [HEADER.error]: error } }, done))
      .then(() => this.#settle(consumer, raw, "ack"))
      .catch(() => {});
  }

  /** Not due yet: send it to the next delay bucket, then ack this copy. Batched per tick. */
  #hop(held: Held): void {
    this.#hops.push(held);
    if (this.#hops.length === 1) setImmediate(() => void this.#flushHops());
  }

  async #flushHops(): Promise<void> {
    const batch = this.#hops;
    this.#hops = [];
    const link = this.#conn.link;
    if (!link) return;
    const live = batch.filter((h) => h.generation === link.generation);
    try {
      const now = Date.now();
      await onLink(link, this.#buckets(link, live.map((h) => h.runAt), now));
      await onLink(link, this.#confirmed(live.length, (done) => {
        for (const h of live) this.#publish(link, h.raw.content, h.envelope, h.runAt, h.priorAttempts, this.#route(h.runAt, now), done);
      }));
      for (const h of live) this.#settle(h.consumer, h.raw, "ack");
    } catch (err) {
      if (this.#conn.link === link) this.options.logger(`moving delayed messages to their next delay bucket failed: ${(err as Error).message}; they stay queued`, {});
      for (const h of live) this.#settle(h.consumer, h.raw, "requeue");
    }
  }

  /** Ack or nack a held delivery, if its generation is still live. */
  #settle(consumer: Consumer, raw: Message, how: "ack" | "requeue"): boolean {
    const link = this.#conn.link;
    if (!link || link.generation !== consumer.generation) return false;
    consumer.unsettled--;
    if (how === "ack") link.consume.ack(raw);
    else link.consume.nack(raw, false, true);
    return true;
  }

  // ---- receive --------------------------------------------------------------

  async receive(request: ReceiveRequest): Promise<Delivery[]> {
    this.#checkOpen();
    const channels = request.channels.map((c) => assertChannel(c));
    const queues = channels.map((c) => channelQueue(this.options.prefix, c));
    const deadline = Date.now() + request.waitMs;
    let settled = false;
    for (;;) {
      if (this.#closed || request.signal?.aborted) return [];
      const link = this.#conn.link ?? (await this.#waitForLink(deadline, request.signal));
      if (!link) return [];
      try {
        if (!this.#consumersReady(link, queues, request.max)) await onLink(link, this.#ensureConsumers(link, channels, queues, request.max));
      } catch (err) {
        if (this.#conn.link === link || isFerryError(err, "CONFIG_INVALID")) throw this.#unavailable(err, "receive");
        continue; // the link dropped meanwhile: wait for the next one
      }
      const got = this.#take(queues, request.max, request.leaseMs);
      if (got.length > 0) return this.#start(got);
      if (!settled && request.waitMs === 0) {
        settled = true;
        await this.#settleQueues(link, queues, request.max);
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) return [];
      await this.#sleep(left, request.signal);
    }
  }

  async #waitForLink(deadline: number, signal: AbortSignal | undefined): Promise<Link | undefined> {
    try {
      return await this.#conn.ready(Math.max(0, Math.min(deadline - Date.now(), this.options.reconnectTimeoutMs)), signal);
    } catch (err) {
      if (isFerryError(err, "TRANSPORT_UNAVAILABLE") && Date.now() < deadline + this.options.reconnectTimeoutMs && !signal?.aborted && deadline - Date.now() < this.options.reconnectTimeoutMs) return undefined;
      if (signal?.aborted) return undefined;
      throw err;
    }
  }

  /**
   * For a receive that must not wait: ask each queue how many messages are
   * ready (a round trip on the consuming channel, so deliveries sent before it
   * are already buffered) and give those the broker is pushing a moment to land.
   */
  async #settleQueues(link: Link, queues: readonly string[], max: number): Promise<void> {
    let ready = 0;
    try {
      for (const q of queues) ready += (await onLink(link, link.consume.checkQueue(q))).messageCount;
    } catch {
      return;
    }
    const buffered = () => queues.reduce((n, q) => n + (this.#buffers.get(q)?.length ?? 0), 0);
    const hasCredit = () => queues.some((q) => {
      const c = this.#consumers.get(q);
      return c !== undefined && c.unsettled < c.prefetch;
    });
    const target = Math.min(max, buffered() + ready);
    const until = Date.now() + 500;
    while (buffered() < target && hasCredit() && Date.now() < until && !this.#closed) await this.#sleep(until - Date.now(), undefined);
  }

  #sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakers.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakers.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  #take(queues: readonly string[], max: number, leaseMs: number): Held[] {
    const out: Held[] = [];
    const now = Date.now();
    let progress = true;
    while (out.length < max && progress) {
      progress = false;
      for (const q of queues) {
        const buf = this.#buffers.get(q);
        if (!buf || buf.length === 0) continue;
        const held = buf.shift()!;
        held.token = `${held.generation}.${held.raw.fields.deliveryTag}.${++this.#counter}`;
        held.expiresAt = now + leaseMs;
        held.attempt = held.priorAttempts + 1;
        this.#leases.set(held.token, held);
        out.push(held);
        progress = true;
        if (out.length >= max) break;
      }
    }
    if (out.length > 0) this.#armLeaseTimer(now + leaseMs);
    return out;
  }

  #start(held: Held[]): Delivery[] {
    if (this.#store) {
      const attempts = this.#store.start(held.map((h) => h.envelope.id), Date.now());
      for (let i = 0; i < held.length; i++) if (attempts[i] !== undefined) held[i]!.attempt = attempts[i]!;
    }
    return held.map((h) => ({ message: { ...h.envelope, attempt: h.attempt, runAt: h.runAt }, token: h.token, leaseExpiresAt: h.expiresAt }));
  }

  // ---- leases ---------------------------------------------------------------

  #armLeaseTimer(at: number): void {
    if (at >= this.#leaseTimerAt) return;
    if (this.#leaseTimer) clearTimeout(this.#leaseTimer);
    this.#leaseTimerAt = at;
    this.#leaseTimer = setTimeout(() => this.#expireLeases(), Math.max(0, at - Date.now()) + 1);
  }

  #expireLeases(): void {
    this.#leaseTimer = undefined;
    this.#leaseTimerAt = Infinity;
    const now = Date.now();
    const expired: string[] = [];
    let next = Infinity;
    for (const [token, h] of this.#leases) {
      if (h.expiresAt <= now) {
        this.#leases.delete(token);
        if (this.#settle(h.consumer, h.raw, "requeue")) expired.push(h.envelope.id);
      } else if (h.expiresAt < next) next = h.expiresAt;
    }
    this.#store?.requeue(expired);
    if (next < Infinity) this.#armLeaseTimer(next);
  }

  /** Take a lease out of the table if `ref` proves it; undefined when lost. */
  #claim(ref: LeaseRef): Held | undefined {
    const h = this.#leases.get(ref.token);
    if (!h || h.envelope.id !== ref.id || h.expiresAt <= Date.now()) return undefined;
    if (this.#conn.link?.generation !== h.generation) return undefined;
    this.#leases.delete(ref.token);
    return h;
  }

  async ack(items: readonly AckItem[]): Promise<boolean[]> {
    this.#checkOpen();
    const finished: { id: string; state: "completed" | "cancelled"; result?: unknown }[] = [];
    const out = items.map((item) => {
      const h = this.#claim(item);
      if (!h || !this.#settle(h.consumer, h.raw, "ack")) return false;
      finished.push({ id: item.id, state: item.status ?? "completed", result: item.result });
      return true;
    });
    if (finished.length > 0) this.#store?.finish(finished, Date.now());
    return out;
  }

  async extend(items: readonly LeaseRef[], leaseMs: number): Promise<boolean[]> {
    this.#checkOpen();
    const now = Date.now();
    return items.map((item) => {
      const h = this.#leases.get(item.token);
      if (!h || h.envelope.id !== item.id || h.expiresAt <= now || this.#conn.link?.generation !== h.generation) return false;
      h.expiresAt = now + leaseMs;
      return true;
    });
  }

  async retry(items: readonly RetryItem[]): Promise<boolean[]> {
    return this.#republish(items, (link, h, item, now, done) => {
      const attempts = item.attemptUsed ? h.attempt : Math.max(0, h.attempt - 1);
      this.#publish(link, h.raw.content, h.envelope, item.runAt, attempts, this.#route(item.runAt, now), done);
    }, (claimed) => this.#store?.retry(claimed.map(({ item }) => ({ id: item.id, runAt: item.runAt, attemptUsed: item.attemptUsed, error: item.error }))));
  }

  async deadLetter(items: readonly DeadItem[]): Promise<boolean[]> {
    return this.#republish(items, (link, h, item, _now, done) => {
      const headers = { [HEADER.attempts]: h.attempt, [HEADER.error]: JSON.stringify(item.error) };
      link.publish.publish("", deadQueue(this.options.prefix, h.envelope.channel), h.raw.content, { persistent: true, messageId: h.envelope.id, contentType: "application/json", headers }, done);
    }, (claimed) => this.#store?.finish(claimed.map(({ item }) => ({ id: item.id, state: "dead" as const, error: item.error })), Date.now()));
  }

  /** Publish a new copy of each leased message (confirmed), then ack the old one. */
  async #republish<I extends LeaseRef & { runAt?: number }>(items: readonly I[], publish: (link: Link, h: Held, item: I, now: number, done: (err: unknown) => void) => void, record: (claimed: { h: Held; item: I }[]) => void): Promise<boolean[]> {
    this.#checkOpen();
    const out = items.map(() => false);
    const claimed: { h: Held; item: I; i: number }[] = [];
    items.forEach((item, i) => {
      const h = this.#claim(item);
      if (h) claimed.push({ h, item, i });
    });
    const link = this.#conn.link;
    if (claimed.length === 0 || !link) return out;
    try {
      const now = Date.now();
      await onLink(link, Promise.all([...new Set(claimed.map(({ h }) => h.envelope.channel))].map((c) => this.#ensureChannel(link, c))));
      await onLink(link, this.#buckets(link, claimed.map(({ item }) => item.runAt ?? 0), now));
      await onLink(link, this.#confirmed(claimed.length, (done) => {
        for (const { h, item } of claimed) publish(link, h, item, now, done);
      }));
    } catch (err) {
      for (const { h } of claimed) this.#settle(h.consumer, h.raw, "requeue");
      this.#store?.requeue(claimed.map(({ h }) => h.envelope.id));
      if (this.#conn.link === link && !this.#closed) throw this.#unavailable(err, "republish");
      return out;
    }
    const done = claimed.filter(({ h }) => this.#settle(h.consumer, h.raw, "ack"));
    for (const { i } of done) out[i] = true;
    record(done);
    return out;
  }

  // ---- dead-letter admin ------------------------------------------------------

  async replay(ids: readonly string[]): Promise<string[]> {
    return this.#fromDead(ids, async (link, envelope, raw, ack) => {
      const now = Date.now();
      this.#store?.replay(envelope.id, now);
      try {
        await onLink(link, this.#ensureChannel(link, envelope.channel));
        await onLink(link, this.#confirmed(1, (done) => this.#publish(link, raw.content, envelope, now, 0, undefined, done)));
      } catch (err) {
        this.#store?.finish([{ id: envelope.id, state: "dead" }], now);
        throw err;
      }
      ack();
      return true;
    });
  }

  async discard(ids: readonly string[]): Promise<string[]> {
    const removed = await this.#fromDead(ids, async (_link, envelope, _raw, ack) => {
      ack();
      this.#store?.discard(envelope.id);
      return true;
    });
    if (this.#store) {
      for (const id of ids) {
        if (removed.includes(id)) continue;
        if (this.#store.get(id)?.state === "dead") {
          this.#store.discard(id);
          removed.push(id);
        }
      }
    }
    return removed;
  }

  async #fromDead(ids: readonly string[], take: (link: Link, envelope: Envelope, raw: Message, ack: () => void) => Promise<boolean>): Promise<string[]> {
    this.#checkOpen();
    const link = await this.#ready();
    const wanted = new Set(ids);
    let channels: Set<string>;
    if (this.#store) {
      channels = new Set<string>();
      for (const id of wanted) {
        const rec = this.#store.get(id);
        if (rec?.state === "dead") channels.add(rec.message.channel);
      }
    } else {
      channels = new Set([...this.#declaredEver].filter((n) => !n.includes("::") && !n.endsWith(":dead")).map((n) => n.slice(this.options.prefix.length + 1)));
    }
    const taken: string[] = [];
    for (const channel of channels) {
      await this.#ensureChannel(link, channel);
      const got = await onLink(link, scanDeadQueue(link.model, deadQueue(this.options.prefix, channel), wanted, async (raw, ack) => {
        let envelope: Envelope;
        try {
          envelope = decodeEnvelope(raw.content.toString("utf8"));
        } catch {
          return false;
        }
        return take(link, envelope, raw, ack);
      }));
      taken.push(...got);
    }
    return ids.filter((id) => taken.includes(id));
  }

  // ---- connection life ------------------------------------------------------

  #onLost(): void {
    const ids = [...this.#leases.values()].map((h) => h.envelope.id);
    this.#leases.clear();
    this.#buffers.clear();
    this.#consumers.clear();
    this.#hops = [];
    for (const timer of this.#holds) clearTimeout(timer);
    this.#holds.clear();
    this.#declared.clear();
    if (this.#leaseTimer) clearTimeout(this.#leaseTimer);
    this.#leaseTimer = undefined;
    this.#leaseTimerAt = Infinity;
    try {
      this.#store?.requeue(ids);
    } catch {
      // the store may already be closed during close()
    }
    for (const w of this.#wakers) w();
  }

  async #onRestored(link: Link): Promise<void> {
    for (const queue of this.#wanted.keys()) {
      const channel = queue.slice(this.options.prefix.length + 1);
      await this.#ensureChannel(link, channel);
      await this.#withConsumerLock(() => this.#startConsumer(link, queue));
    }
    for (const w of this.#wakers) w();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#wakers) w();
    await this.#conn.close();
    this.#store?.close();
  }
}
