/**
 * The bridge: consume an exchange that Ferry does not own (seed 002: another
 * system publishes `shop1.order42.WAIT_SELLER_SEND_GOODS` to a topic exchange)
 * and turn each message into a Ferry task.
 *
 * - The bridge binds its own durable queue to the exchange with the pattern, so
 *   messages published while it is down wait there, and a restart resumes.
 * - The exchange is only checked (passive) unless `declareExchange` is set.
 * - Bodies are JSON or text, not Ferry's wire format; `map` makes the payload,
 *   which the task's schema then checks.
 * - The source message is acked only after the task is stored (the transport's
 *   send resolved). When storing fails, the message goes back to the bridge
 *   queue after `retryDelayMs` and comes again; nothing is lost.
 * - A message with an AMQP `messageId` becomes a task with an id derived from it
 *   ({@link bridgeMessageId}), so a redelivery after a crash between store and
 *   ack is stored once. Without a `messageId` such a redelivery may enqueue twice.
 * - A message that cannot become a payload (body not decodable, `map` throws,
 *   the schema refuses it) is rejected without requeue: to the bridge queue's
 *   dead-letter exchange when it has one, else dropped; either way counted,
 *   logged and emitted as a `warning` event with a stable code.
 * - The connection comes back by itself after a broker restart, like the transport's.
 */
import type { Channel, ConsumeMessage, Options } from "amqplib";
import type { Ferry } from "../../bus/ferry.ts";
import { createEnvelope, type Envelope, type MessageHeaders } from "../../core/envelope.ts";
import { FerryError, isFerryError, toError, type ErrorCode } from "../../core/errors.ts";
import { assertJson, validatePayload } from "../../core/schema.ts";
import { AmqpConnection, onLink, type Link } from "./amqp-connection.ts";
import { bridgeMessageId, resolveBridgeOptions, type BridgeMessage, type BridgeOptions, type ResolvedBridgeOptions } from "./bridge-options.ts";

export type { BridgeMessage, BridgeOptions } from "./bridge-options.ts";
export { bridgeMessageId } from "./bridge-options.ts";

/** What a bridge has done since it started. */
export interface BridgeCounts {
  /** Source messages delivered to the bridge (redeliveries included). */
  received: number;
  /** Tasks stored, their source messages acked. */
  enqueued: number;
  /** Source messages whose task was already stored (a redelivery with the same `messageId`), acked. */
  deduplicated: number;
  /** Source messages that could not become a task, rejected without requeue. */
  rejected: number;
  /** Enqueues that failed (transport unavailable); their source messages went back to the queue. */
  failed: number;
}

/** A running bridge. */
export interface Bridge {
  /** The bridge's queue on the source broker. */
  readonly queue: string;
  /** A snapshot of its counters. */
  readonly counts: BridgeCounts;
  /** Stop consuming, let tasks being stored finish and ack their sources, then disconnect. Idempotent. */
  close(): Promise<void>;
}

/** One source message on its way to becoming a task. */
interface Pending {
  link: Link;
  raw: ConsumeMessage;
  envelope: Envelope;
}

/** How long close() waits for enqueues in flight. */
const DRAIN_MS = 5000;

/**
 * Start a bridge from an exchange Ferry does not own to `options.to`.
 * @throws FerryError `INVALID_OPTION`, `TRANSPORT_UNAVAILABLE` (broker unreachable),
 *   `CONFIG_INVALID` (exchange missing, queue exists with other arguments)
 */
export async function startBridge<T extends import("../../bus/define.ts").TaskDefinition>(ferry: Ferry, options: BridgeOptions<T>): Promise<Bridge> {
  const bridge = new AmqpBridge(ferry, resolveBridgeOptions(options as BridgeOptions));
  await bridge.open();
  return bridge;
}

class AmqpBridge implements Bridge {
  readonly queue: string;
  readonly #ferry: Ferry;
  readonly #o: ResolvedBridgeOptions;
  readonly #conn: AmqpConnection;
  readonly #counts: BridgeCounts = { received: 0, enqueued: 0, deduplicated: 0, rejected: 0, failed: 0 };
  #batch: Pending[] = [];
  #inflight = 0;
  #idle: (() => void) | undefined;
  #timers = new Set<NodeJS.Timeout>();
  #consumerTag: string | undefined;
  #closed = false;

  constructor(ferry: Ferry, options: ResolvedBridgeOptions) {
    this.#ferry = ferry;
    this.#o = options;
    this.queue = options.queue;
    this.#conn = new AmqpConnection({ url: options.url, logger: options.logger, onLost: () => (this.#consumerTag = undefined), onRestored: (link) => this.#setup(link) });
  }

  get counts(): BridgeCounts {
    return { ...this.#counts };
  }

  /** The source connection of the current generation (for fault-injection tests). */
  get link(): Link | undefined {
    return this.#conn.link;
  }

  async open(): Promise<void> {
    const link = await this.#conn.open();
    try {
      await this.#setup(link);
    } catch (err) {
      await this.#conn.close();
      throw err;
    }
  }

  /** Check or declare the exchange, declare and bind the queue, start consuming. */
  async #setup(link: Link): Promise<void> {
    const o = this.#o;
    const ch = await link.model.createChannel();
    ch.on("error", () => {});
    try {
      await this.#topology(ch);
    } finally {
      await ch.close().catch(() => {});
    }
    if (this.#closed) return;
    await onLink(link, link.consume.prefetch(o.prefetch));
    const ok = await onLink(link, link.consume.consume(o.queue, (raw) => this.#arrive(link, raw), { noAck: false }));
    this.#consumerTag = ok.consumerTag;
  }

  async #topology(ch: Channel): Promise<void> {
    const o = this.#o;
    try {
      if (o.declareExchange) await ch.assertExchange(o.exchange, o.type, { durable: true });
      else await ch.checkExchange(o.exchange);
    } catch (err) {
      throw new FerryError("CONFIG_INVALID", `the exchange ${JSON.stringify(o.exchange)} ${o.declareExchange ? "cannot be declared" : "does not exist"} on the source broker: ${(err as Error).message}; ${o.declareExchange ? "an exchange of that name exists with another type" : "create it (its owner should), or pass declareExchange: true"}`, { cause: err, details: { exchange: o.exchange } });
    }
    const args: Record<string, unknown> = { "x-queue-type": o.queueType };
    if (o.deadLetterExchange !== undefined) args["x-dead-letter-exchange"] = o.deadLetterExchange;
    if (o.deadLetterRoutingKey !== undefined) args["x-dead-letter-routing-key"] = o.deadLetterRoutingKey;
    const queue: Options.AssertQueue = { durable: true, arguments: args };
    try {
      await ch.assertQueue(o.queue, queue);
      await ch.bindQueue(o.queue, o.exchange, o.pattern);
    } catch (err) {
      throw new FerryError("CONFIG_INVALID", `the bridge queue ${JSON.stringify(o.queue)} cannot be declared and bound: ${(err as Error).message}; a queue of that name with other arguments must be deleted, or pass another queue`, { cause: err, details: { queue: o.queue } });
    }
  }

  #arrive(link: Link, raw: ConsumeMessage | null): void {
    if (raw === null) {
      this.#o.logger(`RabbitMQ cancelled the bridge's consumer of ${this.#o.queue} (queue deleted?); no more messages come from ${this.#o.exchange}`, { code: "TRANSPORT_UNAVAILABLE", queue: this.#o.queue });
      return;
    }
    this.#counts.received++;
    this.#inflight++;
    void this.#prepare(link, raw);
  }

  /** Decode, map and check one message; queue it for the next enqueue batch, or reject it. */
  async #prepare(link: Link, raw: ConsumeMessage): Promise<void> {
    let envelope: Envelope;
    try {
      envelope = await this.#toEnvelope(raw);
    } catch (err) {
      this.#reject(link, raw, err);
      this.#done(1);
      return;
    }
    this.#batch.push({ link, raw, envelope });
    // one enqueue per socket read: what arrived together is stored together
    if (this.#batch.length === 1) setImmediate(() => void this.#flush());
  }

  async #toEnvelope(raw: ConsumeMessage): Promise<Envelope> {
    const o = this.#o;
    const message: BridgeMessage = { exchange: raw.fields.exchange, routingKey: raw.fields.routingKey, headers: raw.properties.headers ?? {}, properties: raw.properties, content: raw.content, redelivered: raw.fields.redelivered };
    const body = decodeBody(raw);
    let payload: unknown;
    try {
      payload = o.map ? await o.map(body, message) : body;
    } catch (err) {
      throw new FerryError("INVALID_MESSAGE", `map threw: ${toError(err).message}`, { cause: err });
    }
    const what = `payload of "${o.to.name}" from ${raw.fields.exchange}/${raw.fields.routingKey}`;
    await validatePayload(o.to.schema, payload, what);
    assertJson(payload, what);
    const headers: MessageHeaders = { exchange: raw.fields.exchange, routingKey: raw.fields.routingKey };
    const messageId = raw.properties.messageId as unknown;
    if (typeof messageId === "string" && messageId.length > 0) headers.sourceMessageId = messageId;
    const correlationId = raw.properties.correlationId as unknown;
    if (typeof correlationId === "string" && correlationId.length > 0) headers.correlationId = correlationId;
    const traceparent = raw.properties.headers?.traceparent as unknown;
    if (typeof traceparent === "string") headers.traceparent = traceparent;
    return createEnvelope(
      {
        ...(headers.sourceMessageId === undefined ? {} : { id: bridgeMessageId(o.queue, headers.sourceMessageId) }),
        name: o.to.name,
        channel: o.channel ?? this.#ferry.channelOf(o.to),
        payload,
        headers,
        priority: o.to.priority,
        maxAttempts: o.to.retry.attempts,
      },
      this.#ferry.clock.now(),
    );
  }

  /** Store a batch of tasks in one send, then ack their sources; on failure, give them back later. */
  async #flush(): Promise<void> {
    const batch = this.#batch;
    this.#batch = [];
    if (batch.length === 0) return;
    try {
      const transport = await this.#ferry.transport(batch[0]!.envelope.channel);
      const receipts = await transport.send(batch.map((p) => p.envelope));
      const listening = this.#ferry.events.has("dispatched");
      batch.forEach((p, i) => {
        const r = receipts[i]!;
        if (r.deduplicated) this.#counts.deduplicated++;
        else this.#counts.enqueued++;
        if (listening) this.#ferry.events.emit("dispatched", { id: r.id, task: p.envelope.name, channel: p.envelope.channel, payload: p.envelope.payload, deduplicated: r.deduplicated, runAt: p.envelope.runAt });
        // a source from a lost connection is back in its queue already; its redelivery is deduplicated by id
        this.#settle(p.link, p.raw, "ack");
      });
    } catch (err) {
      this.#counts.failed += batch.length;
      const e = toError(err);
      const code = isFerryError(err) ? err.code : "TRANSPORT_UNAVAILABLE";
      this.#o.logger(`enqueueing ${batch.length} task(s) of "${this.#o.to.name}" from ${this.#o.queue} failed: ${e.message}; the source messages go back to the queue in ${this.#o.retryDelayMs} ms`, { code });
      this.#ferry.events.emit("warning", { code, message: `bridge ${this.#o.queue}: enqueue failed, source messages requeued`, error: e });
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        for (const p of batch) this.#settle(p.link, p.raw, "requeue");
      }, this.#o.retryDelayMs);
      this.#timers.add(timer);
    }
    this.#done(batch.length);
  }

  /** Reject without requeue: the queue's dead-letter exchange takes it, if it has one. */
  #reject(link: Link, raw: ConsumeMessage, err: unknown): void {
    this.#counts.rejected++;
    const code: ErrorCode = isFerryError(err) ? err.code : "INVALID_MESSAGE";
    const e = toError(err);
    const where = this.#o.deadLetterExchange === undefined ? "rejected (to the queue's dead-letter exchange if a policy sets one, else dropped)" : `dead-lettered to ${JSON.stringify(this.#o.deadLetterExchange)}`;
    this.#o.logger(`a message from ${raw.fields.exchange}/${raw.fields.routingKey} cannot become a "${this.#o.to.name}" task and is ${where}: ${e.message}`, { code, messageId: raw.properties.messageId, queue: this.#o.queue });
    this.#ferry.events.emit("warning", { code, message: `bridge ${this.#o.queue}: message rejected: ${e.message}`, error: e });
    this.#settle(link, raw, "reject");
  }

  /** Settle a source message on its own connection; one from a lost connection is back in its queue already. */
  #settle(link: Link, raw: ConsumeMessage, how: "ack" | "requeue" | "reject"): void {
    if (this.#conn.link !== link) return;
    try {
      if (how === "ack") link.consume.ack(raw);
      else link.consume.nack(raw, false, how === "requeue");
    } catch {
      // the channel closed under us: the broker requeues the message itself
    }
  }

  #done(n: number): void {
    this.#inflight -= n;
    if (this.#inflight === 0) this.#idle?.();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const link = this.#conn.link;
    if (link && this.#consumerTag !== undefined) await onLink(link, link.consume.cancel(this.#consumerTag)).catch(() => {});
    if (this.#inflight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, DRAIN_MS);
        this.#idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    // closing the channel returns every message still unacked to the bridge queue
    await this.#conn.close();
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** JSON when the content type says so (or none is set and the body parses), else UTF-8 text; bytes that are not UTF-8 as the Buffer. */
function decodeBody(raw: ConsumeMessage): unknown {
  const type = typeof raw.properties.contentType === "string" ? raw.properties.contentType.toLowerCase() : "";
  let text: string;
  try {
    text = UTF8.decode(raw.content);
  } catch {
    return raw.content; // not text: a map can read the bytes; without one the payload check refuses it
  }
  if (type.includes("json")) {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new FerryError("INVALID_MESSAGE", `the body is marked ${type} but is not valid JSON`, { cause: err });
    }
  }
  if (type === "") {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}
