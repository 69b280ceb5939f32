/**
 * The RabbitMQ transport: durable quorum queues (classic as an option),
 * publisher confirms per batch, manual acks, a prefetch that follows demand,
 * delays and retries through TTL buckets (no plugin), a dead-letter queue per
 * channel, recovery after a lost connection, and a SQLite run store for what
 * the broker cannot answer (state, counts, listing, results, dedupKey).
 *
 * This file holds the transport's calls; publishing and topology are in
 * amqp-publisher.ts, consumers, the delivery buffer and leases in amqp-receiver.ts
 * (which explains leases, tokens and how attempts are counted).
 */
import type { Message } from "amqplib";
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../../core/envelope.ts";
import { FerryError, isFerryError } from "../../core/errors.ts";
import { assertChannel } from "../../core/names.ts";
import type { AckItem, ChannelCounts, DeadItem, DeadLetterAdmin, Delivery, LeaseRef, ListQuery, MessageRecord, MessageState, ReceiveRequest, RetryItem, SendReceipt, Transport } from "../types.ts";
import { AmqpConnection, onLink, type Link } from "./amqp-connection.ts";
import { optionsFromUrl, resolveOptions, type AmqpTransportOptions, type ResolvedAmqpOptions } from "./amqp-options.ts";
import { Publisher } from "./amqp-publisher.ts";
import { Receiver, type Held } from "./amqp-receiver.ts";
import { scanDeadQueue } from "./dead-letter-scan.ts";
import { RunStore, type FinishItem, type StartItem } from "./run-store.ts";
import { Retainer, RETAIN_BATCH_SYNC } from "../retainer.ts";
import { channelQueue, deadQueue, HEADER } from "./topology.ts";

export type { AmqpTransportOptions } from "./amqp-options.ts";

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
  readonly #retainer: Retainer | undefined;
  readonly #publisher: Publisher;
  readonly #receiver: Receiver;
  #closed = false;

  /** Use {@link AmqpTransport.connect} or {@link AmqpTransport.fromUrl}. */
  private constructor(options: ResolvedAmqpOptions) {
    this.options = options;
    this.#conn = new AmqpConnection({ url: options.url, logger: options.logger, onLost: () => this.#onLost(), onRestored: (link) => this.#receiver.restore(link) });
    this.#publisher = new Publisher(options);
    this.#receiver = new Receiver(options, this.#conn, this.#publisher, (expired) => this.#store?.requeue(expired.map(attemptOf)));
    if (options.runStore !== false) {
      const store = (this.#store = new RunStore(options.runStore, options.prefix, { report: options.logger }));
      this.counts = () => store.wait((s) => s.counts(Date.now()));
      this.list = (query) => store.wait((s) => s.list(query));
      this.get = (id) => store.wait((s) => s.get(id));
      this.prune = ({ before, states }) => store.wait((s) => s.prune(before, states ?? ["completed", "cancelled"]));
      this.#retainer = new Retainer(options.retention, (state, rule, batch) => store.wait((s) => s.retain(state, rule.count, rule.ageMs >= 0 ? Date.now() - rule.ageMs : null, batch)), RETAIN_BATCH_SYNC);
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
      await t.#retainer?.close();
      await t.#store?.close();
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
    return [...this.#publisher.declaredEver];
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

  // ---- send -----------------------------------------------------------------

  async send(messages: readonly Envelope[]): Promise<SendReceipt[]> {
    this.#checkOpen();
    if (messages.length === 0) return [];
    const bodies = messages.map(encodeEnvelope);
    const receipts = this.#store ? await this.#store.wait((s) => s.insert(messages, bodies)) : messages.map((m) => ({ id: m.id, deduplicated: false }));
    const fresh: number[] = [];
    for (let i = 0; i < messages.length; i++) if (!receipts[i]!.deduplicated) fresh.push(i);
    const p = this.#publisher;
    try {
      const link = await this.#ready();
      await onLink(link, p.ensureChannels(link, fresh.map((i) => messages[i]!.channel)));
      const now = await onLink(link, p.buckets(link, fresh.map((i) => messages[i]!.runAt)));
      await onLink(link, p.confirmed(link, fresh.length, (done) => {
        for (const i of fresh) {
          const m = messages[i]!;
          p.publish(link, Buffer.from(bodies[i]!), m, m.runAt, 0, p.route(m.runAt, now), done);
        }
      }));
    } catch (err) {
      await this.#store?.wait((s) => s.remove(fresh.map((i) => messages[i]!.id)));
      throw this.#unavailable(err, "send");
    }
    return receipts;
  }

  #unavailable(err: unknown, what: string): FerryError {
    if (isFerryError(err)) return err;
    if (this.#closed) return new FerryError("TRANSPORT_CLOSED", "the AMQP transport was closed during the call", { cause: err });
    return new FerryError("TRANSPORT_UNAVAILABLE", `RabbitMQ ${what} failed: ${(err as Error)?.message ?? String(err)}; nothing was confirmed, so it is safe to retry`, { cause: err });
  }

  // ---- receive --------------------------------------------------------------

  async receive(request: ReceiveRequest): Promise<Delivery[]> {
    this.#checkOpen();
    const channels = request.channels.map((c) => assertChannel(c));
    const queues = channels.map((c) => channelQueue(this.options.prefix, c));
    const deadline = Date.now() + request.waitMs;
    const r = this.#receiver;
    let settled = false;
    for (;;) {
      if (this.#closed || request.signal?.aborted) return [];
      const link = this.#conn.link ?? (await this.#waitForLink(deadline, request.signal));
      if (!link) return [];
      try {
        if (!r.consumersReady(link, queues, request.max, request.waitMs > 0)) await onLink(link, r.ensureConsumers(link, channels, queues, request.max));
      } catch (err) {
        if (this.#conn.link === link || isFerryError(err, "CONFIG_INVALID")) throw this.#unavailable(err, "receive");
        continue; // the link dropped meanwhile: wait for the next one
      }
      const got = r.take(queues, request.max, request.leaseMs);
      if (got.length > 0) {
        this.#store?.started(got.map(attemptOf));
        return got.map((h) => ({ message: { ...h.envelope, attempt: h.attempt, runAt: h.runAt }, token: h.token, leaseExpiresAt: h.expiresAt }));
      }
      if (!settled && request.waitMs === 0) {
        settled = true;
        await r.settleQueues(link, queues);
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) return [];
      await r.sleep(left, request.signal);
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

  // ---- outcomes -------------------------------------------------------------

  async ack(items: readonly AckItem[]): Promise<boolean[]> {
    this.#checkOpen();
    const finished: FinishItem[] = [];
    const out = items.map((item) => {
      const h = this.#receiver.claim(item);
      if (!h || !this.#receiver.settle(h.consumer, h.raw, "ack")) return false;
      if (this.#store) finished.push({ id: item.id, state: item.status ?? "completed", attempt: h.attempt, startedAt: h.startedAt, result: item.result });
      return true;
    });
    if (finished.length > 0) {
      this.#store?.finish(finished, Date.now());
      this.#retainer?.noteFinished([true]);
    }
    return out;
  }

  async extend(items: readonly LeaseRef[], leaseMs: number): Promise<boolean[]> {
    this.#checkOpen();
    return this.#receiver.extend(items, leaseMs);
  }

  async retry(items: readonly RetryItem[]): Promise<boolean[]> {
    const p = this.#publisher;
    const used = (h: Held, item: RetryItem) => (item.attemptUsed ? h.attempt : Math.max(0, h.attempt - 1));
    return this.#republish(items, (link, h, item, now, done) => {
      p.publish(link, h.raw.content, h.envelope, item.runAt, used(h, item), p.route(item.runAt, now), done);
    }, async (claimed) => {
      await this.#store?.wait((s) => s.retry(claimed.map(({ h, item }) => ({ id: item.id, runAt: item.runAt, attempt: used(h, item), error: item.error }))));
    });
  }

  async deadLetter(items: readonly DeadItem[]): Promise<boolean[]> {
    return this.#republish(items, (link, h, item, _now, done) => {
      const headers = { [HEADER.attempts]: h.attempt, [HEADER.error]: JSON.stringify(item.error) };
      link.publish.publish("", deadQueue(this.options.prefix, h.envelope.channel), h.raw.content, { persistent: true, messageId: h.envelope.id, contentType: "application/json", headers }, done);
    }, (claimed) => {
      this.#store?.finish(claimed.map(({ h, item }) => ({ id: item.id, state: "dead" as const, attempt: h.attempt, startedAt: h.startedAt, error: item.error })), Date.now());
      this.#retainer?.noteFinished(claimed.map(() => true));
    });
  }

  /** Publish a new copy of each leased message (confirmed), then ack the old one. */
  async #republish<I extends LeaseRef & { runAt?: number }>(items: readonly I[], publish: (link: Link, h: Held, item: I, now: number, done: (err: unknown) => void) => void, record: (claimed: { h: Held; item: I }[]) => void | Promise<void>): Promise<boolean[]> {
    this.#checkOpen();
    const out = items.map(() => false);
    const claimed: { h: Held; item: I; i: number }[] = [];
    items.forEach((item, i) => {
      const h = this.#receiver.claim(item);
      if (h) claimed.push({ h, item, i });
    });
    const link = this.#conn.link;
    if (claimed.length === 0 || !link) return out;
    const p = this.#publisher;
    try {
      await onLink(link, p.ensureChannels(link, claimed.map(({ h }) => h.envelope.channel)));
      const now = await onLink(link, p.buckets(link, claimed.map(({ item }) => item.runAt ?? 0)));
      await onLink(link, p.confirmed(link, claimed.length, (done) => {
        for (const { h, item } of claimed) publish(link, h, item, now, done);
      }));
    } catch (err) {
      for (const { h } of claimed) this.#receiver.settle(h.consumer, h.raw, "requeue");
      this.#store?.requeue(claimed.map(({ h }) => attemptOf(h)));
      if (this.#conn.link === link && !this.#closed) throw this.#unavailable(err, "republish");
      return out;
    }
    const done = claimed.filter(({ h }) => this.#receiver.settle(h.consumer, h.raw, "ack"));
    for (const { i } of done) out[i] = true;
    await record(done);
    return out;
  }

  // ---- dead-letter admin ------------------------------------------------------

  async replay(ids: readonly string[]): Promise<string[]> {
    return this.#fromDead(ids, async (link, envelope, raw, ack) => {
      const now = Date.now();
      await this.#store?.wait((s) => s.replay(envelope.id, now));
      try {
        await onLink(link, this.#publisher.ensureChannel(link, envelope.channel));
        await onLink(link, this.#publisher.confirmed(link, 1, (done) => this.#publisher.publish(link, raw.content, envelope, now, 0, undefined, done)));
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
      await this.#store?.wait((s) => s.discard(envelope.id));
      return true;
    });
    if (this.#store) {
      for (const id of ids) {
        if (removed.includes(id)) continue;
        if ((await this.#store.wait((s) => s.get(id)))?.state === "dead") {
          await this.#store.wait((s) => s.discard(id));
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
        const rec = await this.#store.wait((s) => s.get(id));
        if (rec?.state === "dead") channels.add(rec.message.channel);
      }
    } else {
      channels = new Set([...this.#publisher.declaredEver].filter((n) => !n.includes("::") && !n.endsWith(":dead")).map((n) => n.slice(this.options.prefix.length + 1)));
    }
    const taken: string[] = [];
    for (const channel of channels) {
      await this.#publisher.ensureChannel(link, channel);
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
    const leased = this.#receiver.lost();
    this.#publisher.reset();
    try {
      this.#store?.requeue(leased.map(attemptOf));
    } catch {
      // the store may already be closed during close()
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#receiver.wake();
    await this.#receiver.returnUnleased().catch(() => {});
    await this.#conn.close();
    await this.#retainer?.close();
    await this.#store?.close();
  }

  /**
   * Enforce the run store's retention now (written outcomes only; buffered ones at the next
   * run), as the background does about once a second while messages finish. Returns records
   * deleted; 0 without a run store. For tests and maintenance scripts.
   */
  async enforceRetention(): Promise<number> {
    this.#checkOpen();
    await this.#store?.wait((s) => s.flush());
    return this.#retainer ? this.#retainer.run() : 0;
  }
}

/** A lease's id and the attempt it counts, for the run store. */
function attemptOf(h: Held): StartItem {
  return { id: h.envelope.id, attempt: h.attempt, startedAt: h.startedAt };
}
