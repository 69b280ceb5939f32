/**
 * Options of the RabbitMQ bridge (an external exchange to Ferry tasks), their
 * defaults and checks, the bridge queue's name, and the Ferry id derived from a
 * source message's `messageId`.
 */
import { createHash } from "node:crypto";
import type { MessageProperties } from "amqplib";
import type { InputOf, TaskDefinition } from "../../bus/define.ts";
import { FerryError } from "../../core/errors.ts";
import { assertChannel } from "../../core/names.ts";
import type { AmqpLogger } from "./amqp-options.ts";

/** What the bridge knows about one source message, besides its decoded body. */
export interface BridgeMessage {
  /** The exchange it was published to. */
  exchange: string;
  /** Its routing key (`shop1.order42.WAIT_SELLER_SEND_GOODS`). */
  routingKey: string;
  /** Its AMQP headers (`properties.headers`), `{}` when none. */
  headers: Record<string, unknown>;
  /** Its AMQP properties (messageId, contentType, timestamp, ...). */
  properties: MessageProperties;
  /** The raw body, for formats the default decoding does not cover. */
  content: Buffer;
  /** True when the broker delivered it before (to this bridge or an earlier run of it). */
  redelivered: boolean;
}

/** Options of {@link startBridge}. */
export interface BridgeOptions<T extends TaskDefinition = TaskDefinition> {
  /** AMQP URL of the broker that holds the exchange (`amqp://user:pass@host:5672/vhost`). Required. */
  url: string;
  /** The exchange to consume, owned by another system. Required. */
  exchange: string;
  /** The exchange's type. Default `"topic"`. */
  type?: "topic" | "direct" | "fanout";
  /**
   * The binding key (`*.*.WAIT_SELLER_SEND_GOODS`; `*` one word, `#` any). Required
   * for topic and direct exchanges; ignored by fanout. Default `""`.
   */
  pattern?: string;
  /** The task each message becomes. Required. */
  to: T;
  /**
   * Turn a source message into the task's payload. `body` is the parsed JSON
   * when the body is JSON (by content type, or when no content type is set and
   * it parses), else the UTF-8 text (a body that is not UTF-8: the raw Buffer).
   * Throwing rejects the message (`INVALID_MESSAGE`).
   * Default: the body unchanged.
   */
  map?: (body: unknown, message: BridgeMessage) => InputOf<T> | Promise<InputOf<T>>;
  /**
   * The bridge's own durable queue, bound to the exchange with `pattern`. Reusing
   * the name after a restart resumes where the last run stopped. Default
   * `ferry-bridge:<exchange>:<pattern>:<task name>`.
   */
  queue?: string;
  /** The bridge queue's type. Default `"quorum"`. */
  queueType?: "quorum" | "classic";
  /** Declare the exchange (durable) if missing, instead of checking that it exists. Default `false`. */
  declareExchange?: boolean;
  /**
   * Where rejected (unmappable) messages are dead-lettered: set as the bridge
   * queue's `x-dead-letter-exchange`. A broker policy setting one works too.
   * Without either, a rejected message is dropped after being counted and logged.
   * Default none.
   */
  deadLetterExchange?: string;
  /** Routing key for dead-lettered messages (`x-dead-letter-routing-key`). Default: their own. */
  deadLetterRoutingKey?: string;
  /** The Ferry channel the tasks go to. Default: the task's channel, else the Ferry's default. */
  channel?: string;
  /** Most source messages held unacked at once (AMQP prefetch). Default `50`. */
  prefetch?: number;
  /** After a failed enqueue, wait this long before the source message goes back to the queue. Default `1000` ms. */
  retryDelayMs?: number;
  /** Where rejections and connection trouble are reported. Default `console.warn`. */
  logger?: AmqpLogger;
}

/** Options with every default filled in. */
export interface ResolvedBridgeOptions {
  url: string;
  exchange: string;
  type: "topic" | "direct" | "fanout";
  pattern: string;
  to: TaskDefinition;
  map: ((body: unknown, message: BridgeMessage) => unknown) | undefined;
  queue: string;
  queueType: "quorum" | "classic";
  declareExchange: boolean;
  deadLetterExchange: string | undefined;
  deadLetterRoutingKey: string | undefined;
  channel: string | undefined;
  prefetch: number;
  retryDelayMs: number;
  logger: AmqpLogger;
}

const KEYS = ["url", "exchange", "type", "pattern", "to", "map", "queue", "queueType", "declareExchange", "deadLetterExchange", "deadLetterRoutingKey", "channel", "prefetch", "retryDelayMs", "logger"];

/** The largest AMQP short string (queue and exchange names, routing keys). */
const SHORT_STRING = 255;

/**
 * Fill in defaults and check values.
 * @throws FerryError `INVALID_OPTION`
 */
export function resolveBridgeOptions(options: BridgeOptions): ResolvedBridgeOptions {
  const bad = (option: string, why: string): never => {
    throw new FerryError("INVALID_OPTION", `bridge option "${option}" ${why}`, { details: { option } });
  };
  if (typeof options !== "object" || options === null) bad("options", "must be an object");
  for (const k of Object.keys(options)) if (!KEYS.includes(k)) bad(k, `is not known; known: ${KEYS.join(", ")}`);
  const o = options;
  const text = (option: string, value: unknown, required: boolean): string | undefined => {
    if (value === undefined && !required) return undefined;
    if (typeof value !== "string" || value.length === 0 || Buffer.byteLength(value) > SHORT_STRING) bad(option, `must be a string of 1-${SHORT_STRING} bytes`);
    return value as string;
  };
  const url = text("url", o.url, true)!;
  if (!/^amqps?:\/\//.test(url)) bad("url", "must be an amqp:// or amqps:// URL");
  const exchange = text("exchange", o.exchange, true)!;
  if (exchange.startsWith("amq.") && o.declareExchange) bad("declareExchange", `cannot declare "${exchange}": names starting "amq." are the broker's`);
  const type = o.type ?? "topic";
  if (type !== "topic" && type !== "direct" && type !== "fanout") bad("type", `must be "topic", "direct" or "fanout"`);
  let pattern = o.pattern ?? "";
  if (typeof pattern !== "string" || Buffer.byteLength(pattern) > SHORT_STRING) bad("pattern", `must be a string of at most ${SHORT_STRING} bytes`);
  if (type !== "fanout" && pattern.length === 0) bad("pattern", `is required for a ${type} exchange (a binding key such as "*.*.WAIT_SELLER_SEND_GOODS")`);
  if (type === "fanout") pattern = "";
  const to = o.to;
  if ((to as Partial<TaskDefinition> | undefined)?.kind !== "task") bad("to", "must be a task made by defineTask()");
  if (o.map !== undefined && typeof o.map !== "function") bad("map", "must be a function (body, message) => payload");
  const queue = text("queue", o.queue, false) ?? defaultQueue(exchange, pattern, to.name);
  if (queue.startsWith("amq.")) bad("queue", `cannot start with "amq.": such names are the broker's`);
  const queueType = o.queueType ?? "quorum";
  if (queueType !== "quorum" && queueType !== "classic") bad("queueType", `must be "quorum" or "classic"`);
  const int = (option: string, value: unknown, fallback: number, min: number, max: number): number => {
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) bad(option, `must be a whole number from ${min} to ${max}`);
    return value as number;
  };
  if (o.channel !== undefined) assertChannel(o.channel);
  if (o.logger !== undefined && typeof o.logger !== "function") bad("logger", "must be a function (message, details) => void");
  return {
    url,
    exchange,
    type,
    pattern,
    to,
    map: o.map as ResolvedBridgeOptions["map"],
    queue,
    queueType,
    declareExchange: o.declareExchange === true,
    deadLetterExchange: text("deadLetterExchange", o.deadLetterExchange, false),
    deadLetterRoutingKey: text("deadLetterRoutingKey", o.deadLetterRoutingKey, false),
    channel: o.channel,
    prefetch: int("prefetch", o.prefetch, 50, 1, 65535),
    retryDelayMs: int("retryDelayMs", o.retryDelayMs, 1000, 0, 3_600_000),
    logger: o.logger ?? ((message, details) => console.warn(`[ferry bridge] ${message}`, details ?? "")),
  };
}

/** The default bridge queue: `ferry-bridge:<exchange>:<pattern>:<task>`, hashed down when longer than AMQP allows. */
export function defaultQueue(exchange: string, pattern: string, task: string): string {
  const name = `ferry-bridge:${exchange}:${pattern}:${task}`;
  if (Buffer.byteLength(name) <= SHORT_STRING) return name;
  return `ferry-bridge:${createHash("sha256").update(name).digest("hex").slice(0, 32)}:${task}`.slice(0, SHORT_STRING);
}

/**
 * The Ferry message id of a source message with AMQP `messageId`: a UUID
 * (version 8, name-based on SHA-256) of the bridge queue and that id. The same
 * source message always gets the same id, so a redelivery (the bridge stopped
 * between enqueue and ack) is stored once; two bridges on one exchange have
 * different queues, hence different ids.
 */
export function bridgeMessageId(queue: string, messageId: string): string {
  const h = createHash("sha256").update(queue).update("\n").update(messageId).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}
