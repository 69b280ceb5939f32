/**
 * The consuming side of the RabbitMQ transport: one consumer per channel queue
 * with a prefetch that follows demand (and the copies it holds), a local buffer
 * of pushed deliveries, copies due within the hold window held in memory until
 * due, hops of the others to their next delay bucket, and the leases this
 * transport enforces.
 *
 * A delivery stays unacked from arrival until its lease is settled. When a lease
 * ends without ack/extend, the delivery goes back to the front of the local
 * buffer ("lapsed"): the next receive here leases it again (attempt + 1, new
 * token), and until then the old token still settles it, as in every transport.
 * A lapsed delivery no one here takes within {@link LAPSE_MS} goes back to the
 * broker for other consumers (a new copy carrying its attempts, then an ack).
 * A token is `generation.deliveryTag.counter`: a lease from before a
 * reconnection, or one leased again or settled, is refused.
 *
 * Attempts come from AMQP: `x-ferry-attempts` (set when Ferry republishes) plus
 * the quorum queue's `x-delivery-count` (classic queues: `redelivered` counts as
 * one). The broker also counts a buffered delivery returned unleased on a
 * connection loss, so an attempt may read one high, never low; a graceful close
 * republishes those with their attempts instead (see `returnUnleased`).
 */
import type { ConsumeMessage, Message } from "amqplib";
import { decodeEnvelope, type Envelope } from "../../core/envelope.ts";
import type { LeaseRef } from "../types.ts";
import { onLink, type AmqpConnection, type Link } from "./amqp-connection.ts";
import type { ResolvedAmqpOptions } from "./amqp-options.ts";
import type { Publisher } from "./amqp-publisher.ts";
import { HEADER } from "./topology.ts";

/** How long a lapsed delivery waits in the local buffer before it goes back to the broker. */
export const LAPSE_MS = 1000;

/** One consumer of a channel queue, on one connection generation. */
export interface Consumer {
  queue: string;
  tag: string;
  prefetch: number;
  generation: number;
  /** Deliveries of this consumer not yet acked or nacked. */
  unsettled: number;
  /** Of those, the copies held in memory until due. */
  holding: number;
  /** A restart with a larger prefetch is under way (see `#keepCredit`). */
  growing?: boolean;
}

/** A delivery held unacked: buffered, then leased. */
export interface Held {
  raw: Message;
  envelope: Envelope;
  runAt: number;
  /** Attempts used before this delivery, as the broker's headers tell. */
  priorAttempts: number;
  consumer: Consumer;
  generation: number;
  token: string;
  attempt: number;
  /** When the lease was taken (ms). */
  startedAt: number;
  /** When the lease ends; for a lapsed delivery, when it goes back to the broker. */
  expiresAt: number;
  /** The lease ran out and the delivery waits in the buffer, its old token still valid. */
  lapsed: boolean;
}

/** Consumers, buffer, holds, hops and leases of one transport. */
export class Receiver {
  readonly #options: ResolvedAmqpOptions;
  readonly #conn: AmqpConnection;
  readonly #publisher: Publisher;
  /** Told about lapsed deliveries that went back to the broker. */
  readonly #onReturned: (held: Held[]) => void;
  #buffers = new Map<string, Held[]>();
  #leases = new Map<string, Held>();
  #consumers = new Map<string, Consumer>();
  #wanted = new Map<string, number>();
  /** The `max` of the last receive per queue: the credit to keep free for due deliveries. */
  #demand = new Map<string, number>();
  #wakers = new Set<() => void>();
  #consumerLock: Promise<unknown> = Promise.resolve();
  #counter = 0;
  #leaseTimer: NodeJS.Timeout | undefined;
  #leaseTimerAt = Infinity;
  #hops: Held[] = [];
  /** Most copies one consumer holds in memory inside the hold window: half its largest prefetch. */
  readonly #holdLimit: number;
  /** Copies held until due, by their timer. */
  #holds = new Map<NodeJS.Timeout, Held>();
  #wakeScheduled = false;
  /** Deliveries that arrived per queue (for {@link Receiver.settleQueues}), and how many of those wait. */
  #arrivals = new Map<string, number>();
  #settling = 0;
  /** Set by {@link Receiver.returnUnleased}: no consumer starts any more. */
  #closing = false;

  constructor(options: ResolvedAmqpOptions, conn: AmqpConnection, publisher: Publisher, onReturned: (held: Held[]) => void) {
    this.#options = options;
    this.#conn = conn;
    this.#publisher = publisher;
    this.#onReturned = onReturned;
    this.#holdLimit = Math.floor((options.prefetch > 0 ? options.prefetch : options.maxPrefetch) / 2);
  }

  // ---- consumers --------------------------------------------------------------

  /**
   * True when each queue has a consumer on `link` whose prefetch covers what it
   * holds plus `max`, or when `eager` and something is buffered: then a consumer
   * whose prefetch falls short is restarted with a larger one in the background,
   * and the receive takes what is buffered meanwhile instead of waiting.
   */
  consumersReady(link: Link, queues: readonly string[], max: number, eager: boolean): boolean {
    let ready = true;
    let buffered = false;
    for (const queue of queues) {
      const c = this.#consumers.get(queue);
      if (!c || c.generation !== link.generation) return false;
      this.#demand.set(queue, Math.max(1, max));
      if (c.prefetch < this.#wantedPrefetch(queue)) ready = false;
      if ((this.#buffers.get(queue)?.length ?? 0) > 0) buffered = true;
    }
    if (ready || !eager || !buffered) return ready;
    for (const queue of queues) this.#keepCredit(link, this.#consumers.get(queue)!);
    return true;
  }

  /** Declare the channels and start consumers that are missing (or whose prefetch is too small). */
  async ensureConsumers(link: Link, channels: readonly string[], queues: readonly string[], max: number): Promise<void> {
    await this.#publisher.ensureChannels(link, channels);
    for (const queue of queues) {
      this.#demand.set(queue, Math.max(1, max));
      const c = this.#consumers.get(queue);
      const want = this.#wantedPrefetch(queue);
      if (c && c.generation === link.generation && c.prefetch >= want) continue;
      this.#wanted.set(queue, Math.max(want, this.#wanted.get(queue) ?? 0));
      await this.#withConsumerLock(() => this.#startConsumer(link, queue));
    }
  }

  /** The prefetch that covers the deliveries held (not buffered: held until due, hopping, leased) plus the last receive's `max`. */
  #wantedPrefetch(queue: string): number {
    if (this.#options.prefetch > 0) return this.#options.prefetch;
    let held = 0;
    const c = this.#consumers.get(queue);
    if (c) held = Math.max(0, c.unsettled - (this.#buffers.get(queue)?.length ?? 0));
    const want = Math.min(this.#options.maxPrefetch, held + (this.#demand.get(queue) ?? 1));
    return Math.min(this.#options.maxPrefetch, 2 ** Math.ceil(Math.log2(want)));
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
    if (this.#closing || this.#conn.closed || this.#conn.link !== link) return;
    await onLink(link, link.consume.prefetch(want));
    const consumer: Consumer = { queue, tag: "", prefetch: want, generation: link.generation, unsettled: 0, holding: 0 };
    const ok = await onLink(link, link.consume.consume(queue, (raw) => this.#arrive(consumer, raw), { noAck: false }));
    consumer.tag = ok.consumerTag;
    this.#consumers.set(queue, consumer);
    // the old consumer stops; its unacked deliveries stay held on the channel
    if (old && old.generation === link.generation) await onLink(link, link.consume.cancel(old.tag));
    // copies that arrived before it was registered may already be held until due
    this.#keepCredit(link, consumer);
  }

  /** After a reconnection: consume again every queue consumed before. */
  async restore(link: Link): Promise<void> {
    for (const queue of this.#wanted.keys()) {
      await this.#publisher.ensureChannel(link, queue.slice(this.#options.prefix.length + 1));
      await this.#withConsumerLock(() => this.#startConsumer(link, queue));
    }
    this.wake();
  }

  // ---- arrivals -----------------------------------------------------------------

  #arrive(consumer: Consumer, raw: ConsumeMessage | null): void {
    if (raw === null) {
      this.#options.logger(`RabbitMQ cancelled the consumer of ${consumer.queue} (queue deleted?)`, { queue: consumer.queue });
      if (this.#consumers.get(consumer.queue) === consumer) this.#consumers.delete(consumer.queue);
      return;
    }
    const link = this.#conn.link;
    if (!link || link.generation !== consumer.generation) return;
    consumer.unsettled++;
    this.#arrivals.set(consumer.queue, (this.#arrivals.get(consumer.queue) ?? 0) + 1);
    if (this.#settling > 0) this.#wakeSoon();
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(raw.content.toString("utf8"));
    } catch (err) {
      this.#poison(link, consumer, raw, err as Error);
      return;
    }
    const headers = raw.properties.headers ?? {};
    const runAt = typeof headers[HEADER.runAt] === "number" ? (headers[HEADER.runAt] as number) : envelope.runAt;
    // x-delivery-count only when this queue redelivered it: a copy dead-lettered from a delay bucket may carry the bucket's
    const redeliveries = !raw.fields.redelivered ? 0 : typeof headers["x-delivery-count"] === "number" ? (headers["x-delivery-count"] as number) : 1;
    const priorAttempts = (typeof headers[HEADER.attempts] === "number" ? (headers[HEADER.attempts] as number) : envelope.attempt) + redeliveries;
    const held: Held = { raw, envelope, runAt, priorAttempts, consumer, generation: link.generation, token: "", attempt: 0, startedAt: 0, expiresAt: 0, lapsed: false };
    const now = Date.now();
    const hopDue = headers[HEADER.hopDue];
    // a delivery that took the consumer's last credit may have waited for that credit in the queue:
    // its lag is this consumer's backlog, not the broker's, and must not widen the hop margin
    if (typeof hopDue === "number" && !raw.fields.redelivered && consumer.unsettled < consumer.prefetch) this.#publisher.observeHopLag(now - hopDue, now);
    const p = this.#publisher;
    if (p.holds(runAt, now) || (p.inWindow(runAt, now) && consumer.holding < this.#holdLimit)) {
      consumer.holding++;
      this.#holdUntilDue(held);
    } else this.#hop(held);
    this.#keepCredit(link, consumer);
  }

  /**
   * Copies held until due, and copies on their way to their next bucket, stay
   * unacked and so use the consumer's credit. When they (with the leases) leave
   * less than the last receive's `max` free, restart the consumer with a larger
   * prefetch now (in the background) rather than at the next receive: due copies
   * would otherwise wait behind them in the queue, and come late.
   */
  #keepCredit(link: Link, consumer: Consumer): void {
    if (consumer.growing || this.#options.prefetch > 0 || consumer.prefetch >= this.#options.maxPrefetch) return;
    if (this.#consumers.get(consumer.queue) !== consumer) return;
    const want = this.#wantedPrefetch(consumer.queue);
    if (consumer.prefetch >= want) return;
    consumer.growing = true;
    this.#wanted.set(consumer.queue, Math.max(want, this.#wanted.get(consumer.queue) ?? 0));
    this.#withConsumerLock(() => this.#startConsumer(link, consumer.queue))
      .catch(() => {}) // the link dropped: restore() starts the consumers again
      .finally(() => (consumer.growing = false));
  }

  /** A copy inside the hold window waits here, unacked, on a timer (a bucket hop costs more); never handed out before `runAt`. */
  #holdUntilDue(held: Held): void {
    const remaining = held.runAt - Date.now();
    if (remaining <= 0) {
      held.consumer.holding--;
      return this.#buffer(held);
    }
    // timers run on a monotonic clock and may fire a little before the wall clock reaches runAt: check again
    const timer = setTimeout(() => {
      this.#holds.delete(timer);
      this.#holdUntilDue(held);
    }, remaining);
    this.#holds.set(timer, held);
  }

  #buffer(held: Held): void {
    if (this.#conn.link?.generation !== held.generation) return;
    this.#buffered(held.consumer.queue).push(held);
    this.#wakeSoon();
  }

  /** Wake waiting receives once the whole socket read has been handled, so a waiting receive takes a batch. */
  #wakeSoon(): void {
    if (this.#wakeScheduled || this.#wakers.size === 0) return;
    this.#wakeScheduled = true;
    setImmediate(() => {
      this.#wakeScheduled = false;
      this.wake();
    });
  }

  /** A message that is not Ferry's wire format goes straight to the channel's dead-letter queue. */
  #poison(link: Link, consumer: Consumer, raw: Message, err: Error): void {
    const dead = `${consumer.queue}:dead`;
    this.#options.logger(`a message on ${consumer.queue} is not in Ferry's wire format and goes to ${dead}: ${err.message}`, { messageId: raw.properties.messageId });
    const error = JSON.stringify({ at: Date.now(), attempt: 0, code: "INVALID_MESSAGE", message: err.message });
    this.#publisher
      .confirmed(link, 1, (done) => link.publish.publish("", dead, raw.content, { ...raw.properties, persistent: true, headers: { ...raw.properties.headers, [HEADER.error]: error } }, done))
      .then(() => this.settle(consumer, raw, "ack"))
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
    await this.#moveOn(batch, (at, now) => this.#publisher.hopRoute(at, now));
  }

  /** Publish a new copy of each (confirmed, carrying its attempts), then ack the old one; on failure the old ones go back to their queue. */
  async #moveOn(batch: readonly Held[], route: (runAt: number, now: number) => number | undefined): Promise<void> {
    const link = this.#conn.link;
    if (!link) return;
    const live = batch.filter((h) => h.generation === link.generation);
    const p = this.#publisher;
    try {
      const now = await onLink(link, p.buckets(link, live.map((h) => h.runAt), route));
      await onLink(link, p.confirmed(link, live.length, (done) => {
        for (const h of live) p.publish(link, h.raw.content, h.envelope, h.runAt, h.priorAttempts, route(h.runAt, now), done);
      }));
      for (const h of live) this.settle(h.consumer, h.raw, "ack");
    } catch (err) {
      if (this.#conn.link === link) this.#options.logger(`republishing ${live.length} message(s) (to a delay bucket or back to their queue) failed: ${(err as Error).message}; they stay queued`, {});
      for (const h of live) this.settle(h.consumer, h.raw, "requeue");
    }
  }

  /**
   * Before a graceful close: stop the consumers, then send every delivery that
   * is here but not leased (buffered, held until due, on its way to a bucket)
   * back as a new copy carrying its attempts, and ack the old one. Left to the
   * channel's close, the broker would count each as a delivery (a quorum queue's
   * `x-delivery-count`), and its next attempt would read one high.
   */
  async returnUnleased(): Promise<void> {
    const link = this.#conn.link;
    if (!link) return;
    this.#closing = true;
    await this.#withConsumerLock(async () => {}); // a consumer being started (a larger prefetch) is registered first
    for (const c of this.#consumers.values()) {
      if (c.generation === link.generation) await onLink(link, link.consume.cancel(c.tag)).catch(() => {});
    }
    this.#consumers.clear();
    const batch = this.#hops;
    this.#hops = [];
    for (const buf of this.#buffers.values()) {
      batch.push(...buf); // a lapsed one stays in the lease table, so the run store hears it was returned
      buf.length = 0;
    }
    for (const [timer, h] of this.#holds) {
      clearTimeout(timer);
      batch.push(h);
    }
    this.#holds.clear();
    if (batch.length > 0) await this.#moveOn(batch, (at, now) => this.#publisher.route(at, now));
  }

  /** Ack or nack a held delivery, if its generation is still live. */
  settle(consumer: Consumer, raw: Message, how: "ack" | "requeue"): boolean {
    const link = this.#conn.link;
    if (!link || link.generation !== consumer.generation) return false;
    consumer.unsettled--;
    if (how === "ack") link.consume.ack(raw);
    else link.consume.nack(raw, false, true);
    return true;
  }

  // ---- waiting ------------------------------------------------------------------

  /** Wake every waiting receive. */
  wake(): void {
    for (const w of this.#wakers) w();
  }

  /** Sleep until woken, aborted, or `ms` passed. */
  sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
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

  /**
   * For a receive that must not wait: ask each queue how many messages are
   * ready (a round trip on the consuming channel, so deliveries sent before it
   * are already here) and give those the broker is pushing a moment to land
   * (buffered, or held until due).
   */
  async settleQueues(link: Link, queues: readonly string[]): Promise<void> {
    let ready = 0;
    try {
      for (const q of queues) ready += (await onLink(link, link.consume.checkQueue(q))).messageCount;
    } catch {
      return;
    }
    const arrived = () => queues.reduce((n, q) => n + (this.#arrivals.get(q) ?? 0), 0);
    const from = arrived();
    const hasCredit = () => queues.some((q) => {
      const c = this.#consumers.get(q);
      return c !== undefined && c.unsettled < c.prefetch;
    });
    // all that is ready (as far as credit goes), not just `max`: take() then picks by priority across queues
    const until = Date.now() + 500;
    this.#settling++;
    try {
      while (arrived() - from < ready && hasCredit() && Date.now() < until && !this.#conn.closed) await this.sleep(until - Date.now(), undefined);
    } finally {
      this.#settling--;
    }
  }

  // ---- leases -------------------------------------------------------------------

  /** Lease up to `max` buffered deliveries: highest priority first, then oldest due, across the queues. */
  take(queues: readonly string[], max: number, leaseMs: number): Held[] {
    const out: Held[] = [];
    const now = Date.now();
    while (out.length < max) {
      let best: Held[] | undefined;
      for (const q of queues) {
        const head = this.#buffers.get(q)?.[0];
        if (!head) continue;
        const b = best?.[0];
        if (!b || head.envelope.priority > b.envelope.priority || (head.envelope.priority === b.envelope.priority && head.runAt < b.runAt)) best = this.#buffers.get(q);
      }
      if (!best) break;
      const held = best.shift()!;
      if (held.lapsed) {
        this.#leases.delete(held.token);
        held.lapsed = false;
      }
      held.token = `${held.generation}.${held.raw.fields.deliveryTag}.${++this.#counter}`;
      held.startedAt = now;
      held.expiresAt = now + leaseMs;
      held.attempt = held.priorAttempts + 1;
      this.#leases.set(held.token, held);
      out.push(held);
    }
    if (out.length > 0) this.#armLeaseTimer(now + leaseMs);
    return out;
  }

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
    let next = Infinity;
    let lapsed = false;
    const returned: Held[] = [];
    for (const [token, h] of this.#leases) {
      if (h.expiresAt > now) {
        if (h.expiresAt < next) next = h.expiresAt;
      } else if (!h.lapsed) {
        // due again at once: first in line here, the old token valid until someone takes it
        h.lapsed = true;
        h.priorAttempts = h.attempt;
        h.expiresAt = now + LAPSE_MS;
        if (h.expiresAt < next) next = h.expiresAt;
        this.#buffered(h.consumer.queue).unshift(h);
        lapsed = true;
      } else {
        // no one here took it: back to the broker, for every consumer
        this.#leases.delete(token);
        this.#unbuffer(h);
        h.lapsed = false;
        returned.push(h);
        this.#hop(h);
      }
    }
    if (lapsed) this.wake();
    if (returned.length > 0) this.#onReturned(returned);
    if (next < Infinity) this.#armLeaseTimer(next);
  }

  #buffered(queue: string): Held[] {
    let buf = this.#buffers.get(queue);
    if (!buf) this.#buffers.set(queue, (buf = []));
    return buf;
  }

  #unbuffer(h: Held): void {
    const buf = this.#buffers.get(h.consumer.queue);
    const i = buf ? buf.indexOf(h) : -1;
    if (i >= 0) buf!.splice(i, 1);
  }

  /** Take a lease out of the table if `ref` proves it (also one that lapsed and no one took again); undefined when lost. */
  claim(ref: LeaseRef): Held | undefined {
    const h = this.#leases.get(ref.token);
    if (!h || h.envelope.id !== ref.id) return undefined;
    if (this.#conn.link?.generation !== h.generation) return undefined;
    this.#leases.delete(ref.token);
    if (h.lapsed) {
      this.#unbuffer(h);
      h.lapsed = false;
      h.priorAttempts = h.attempt - 1;
    }
    return h;
  }

  /** Extend leases to now + `leaseMs`. Per item: true, or false when the lease was lost. */
  extend(items: readonly LeaseRef[], leaseMs: number): boolean[] {
    const now = Date.now();
    const generation = this.#conn.link?.generation;
    const out = items.map((item) => {
      const h = this.#leases.get(item.token);
      if (!h || h.envelope.id !== item.id || generation !== h.generation) return false;
      if (h.lapsed) {
        this.#unbuffer(h);
        h.lapsed = false;
        h.priorAttempts = h.attempt - 1;
      }
      h.expiresAt = now + leaseMs;
      return true;
    });
    this.#armLeaseTimer(now + leaseMs);
    return out;
  }

  /** The connection was lost: every delivery is void (the broker returns them). Returns the leases that were live. */
  lost(): Held[] {
    const leased = [...this.#leases.values()];
    this.#leases.clear();
    this.#buffers.clear();
    this.#consumers.clear();
    this.#hops = [];
    for (const timer of this.#holds.keys()) clearTimeout(timer);
    this.#holds.clear();
    if (this.#leaseTimer) clearTimeout(this.#leaseTimer);
    this.#leaseTimer = undefined;
    this.#leaseTimerAt = Infinity;
    this.wake();
    return leased;
  }
}
