/**
 * What the bus's calls take and return: the options of createFerry, dispatch,
 * publish, on and request, their receipts, the allowed option keys, and the
 * checked building of a message from a dispatch.
 */
import { parseDuration, type Duration } from "../core/duration.ts";
import { createEnvelope, createEnvelopes, type Envelope, type MessageHeaders } from "../core/envelope.ts";
import { FerryError } from "../core/errors.ts";
import type { RunReport } from "../core/events.ts";
import type { Clock } from "../core/clock.ts";
import { checkInteger } from "../core/options.ts";
import { assertJson, isPlainJson, validatePayload } from "../core/schema.ts";
import type { SendReceipt, Transport } from "../transport/types.ts";
import type { EventDefinition, TaskDefinition } from "./define.ts";

/** A transport given by URL or as an instance. */
export type TransportSpec = string | Transport;

/** Options of {@link createFerry}. */
export interface FerryOptions {
  /** The default transport. Default: `FERRY_URL` from the environment, else `sqlite://./data/ferry.db`. */
  transport?: TransportSpec;
  /** Channels bound to other transports, by name: `{ emails: "redis://127.0.0.1:6379" }`. Default none. */
  channels?: Record<string, TransportSpec>;
  /** The channel for tasks that name none. Default `"default"`. */
  defaultChannel?: string;
  /** Tasks this Ferry can run. More with `register()`. */
  tasks?: TaskDefinition[];
  /** Events this Ferry knows by name (for validating publishes by name). */
  events?: EventDefinition[];
  /** Called after every run (worker and sync). */
  onRun?: (report: RunReport) => void;
  /** The clock for due times computed by the publisher. Default the system clock. */
  clock?: Clock;
}

/** Options of {@link Ferry.dispatch}. */
export interface DispatchOptions {
  /** Override the task's channel. */
  channel?: string;
  /** Run after this long. Not with `runAt`. */
  delay?: Duration;
  /** Run at this time (Date or ms since the epoch). Not with `delay`. */
  runAt?: Date | number;
  /** -1000..1000, higher first. Default: the task's priority. */
  priority?: number;
  /** While a message with this key is live, dispatching another returns the first. */
  dedupKey?: string;
  /** Attempts before the dead-letter store. Default: the task's `retry.attempts`. */
  maxAttempts?: number;
  /** Extra headers (strings). */
  headers?: Record<string, string>;
  /** Tie to a business flow. Default: the message's own id. */
  correlationId?: string;
  /** The message or event that caused this one. */
  causationId?: string;
  /** Enqueue inside this database transaction (a `pg` client in BEGIN, for PostgreSQL channels). */
  transaction?: unknown;
  /**
   * The message id (1-64 letters, digits, `-`, `_`). Default: a new time-ordered id. A send
   * whose id is already stored is a duplicate and stores nothing: idempotent producers use it.
   */
  id?: string;
}

/** Options of {@link Ferry.publish}. */
export interface PublishOptions {
  correlationId?: string;
  causationId?: string;
  headers?: Record<string, string>;
  transaction?: unknown;
}

/** Options of {@link Ferry.on}. */
export interface SubscribeOptions {
  /** Deliver on this channel (async). Without a channel the task runs in the publisher's process (sync). */
  channel?: string;
  /** Run the task this long after the event. Needs a channel. Default 0. */
  delay?: Duration;
  /** Turn the event payload into the task's payload. Default: unchanged. */
  map?: (payload: never) => unknown;
}

/** What a dispatch returns. */
export interface DispatchReceipt extends SendReceipt {
  channel: string;
  task: string;
}

/** What a publish returns: the event's id and the task messages it fanned out to. */
export interface PublishReceipt {
  id: string;
  event: string;
  messages: DispatchReceipt[];
  /** Tasks run in the publisher's process. */
  ran: string[];
}

/** Options of {@link Ferry.request}: a dispatch's options plus how long to wait. */
export interface RequestOptions extends Omit<DispatchOptions, "transaction" | "dedupKey"> {
  /** Give up waiting after this long. Default `"30s"`. */
  timeout?: Duration;
  /** Stop waiting when aborted. */
  signal?: AbortSignal;
}

/** The option keys each call accepts (anything else is refused with `INVALID_OPTION`). */
export const REQUEST_OPTIONS = ["channel", "delay", "runAt", "priority", "maxAttempts", "headers", "correlationId", "causationId", "timeout", "signal"] as const;
export const DISPATCH_OPTIONS = ["channel", "delay", "runAt", "priority", "dedupKey", "maxAttempts", "headers", "correlationId", "causationId", "transaction", "id"] as const;
export const PUBLISH_OPTIONS = ["correlationId", "causationId", "headers", "transaction"] as const;
export const FERRY_OPTIONS = ["transport", "channels", "defaultChannel", "tasks", "events", "onRun", "clock"] as const;

/**
 * A dispatch's options, checked once and resolved against its task: what every
 * message of one `dispatch` or `dispatchMany` shares.
 */
export interface EnvelopeTemplate {
  /** The task name. */
  name: string;
  channel: string;
  /** The task's schema, when it has one (payloads are validated against it). */
  schema: TaskDefinition["schema"] | undefined;
  runAt: number;
  priority: number;
  maxAttempts: number;
  /** The headers every message gets (each message gets its own copy). */
  headers: MessageHeaders;
  dedupKey: string | null;
}

/**
 * Check a dispatch's options (delay or runAt, headers, priority, attempts,
 * dedupKey) and resolve them against the task.
 * @throws FerryError `INVALID_OPTION`
 */
export function envelopeTemplate(task: TaskDefinition | string, options: DispatchOptions, channel: string, now: number): EnvelopeTemplate {
  const name = typeof task === "string" ? task : task.name;
  if (options.delay !== undefined && options.runAt !== undefined) throw new FerryError("INVALID_OPTION", "give either delay or runAt, not both", { details: { option: "delay" } });
  let runAt = now;
  if (options.delay !== undefined) runAt = now + parseDuration(options.delay, "delay");
  if (options.runAt !== undefined) {
    runAt = options.runAt instanceof Date ? options.runAt.getTime() : options.runAt;
    if (typeof runAt !== "number" || !Number.isFinite(runAt) || runAt < 0) throw new FerryError("INVALID_OPTION", "runAt must be a Date or ms since the epoch", { details: { option: "runAt" } });
  }
  const headers: MessageHeaders = {};
  if (options.headers !== undefined) {
    if (typeof options.headers !== "object" || options.headers === null) throw new FerryError("INVALID_OPTION", "headers must be an object of strings", { details: { option: "headers" } });
    for (const [k, v] of Object.entries(options.headers)) {
      if (typeof v !== "string") throw new FerryError("INVALID_OPTION", `header "${k}" must be a string`, { details: { option: `headers.${k}` } });
      headers[k] = v;
    }
  }
  if (options.correlationId !== undefined) headers.correlationId = String(options.correlationId);
  if (options.causationId !== undefined) headers.causationId = String(options.causationId);
  const priority = options.priority ?? (typeof task === "string" ? 0 : task.priority);
  checkInteger(priority, "priority", -1000, 1000);
  const maxAttempts = options.maxAttempts ?? (typeof task === "string" ? 3 : task.retry.attempts);
  checkInteger(maxAttempts, "maxAttempts", 1, 1000);
  if (options.dedupKey !== undefined && (typeof options.dedupKey !== "string" || options.dedupKey.length === 0 || options.dedupKey.length > 200)) {
    throw new FerryError("INVALID_OPTION", "dedupKey must be 1-200 characters", { details: { option: "dedupKey" } });
  }
  return { name, channel, schema: typeof task === "string" ? undefined : task.schema, runAt, priority, maxAttempts, headers, dedupKey: options.dedupKey ?? null };
}

/**
 * The messages of a `dispatchMany` from its template: each payload checked against
 * the task's schema (awaited only when the task has one) and as JSON, in order,
 * before any message is made.
 * @throws FerryError `INVALID_PAYLOAD`
 */
export async function buildEnvelopes(template: EnvelopeTemplate, payloads: readonly unknown[], now: number): Promise<Envelope[]> {
  const what = `payload of "${template.name}"`;
  for (const payload of payloads) {
    if (template.schema) await validatePayload(template.schema, payload, what);
    assertJson(payload, what);
  }
  const { name, channel, headers, runAt, priority, maxAttempts, dedupKey } = template;
  return createEnvelopes({ name, channel, headers, runAt, priority, maxAttempts, dedupKey }, payloads, now);
}

/**
 * Check a dispatch and build its message: payload against the task's schema
 * and as JSON, then delay or runAt, headers, priority, attempts and dedupKey.
 * A promise only when the task has a schema.
 * @throws FerryError `INVALID_PAYLOAD`, `INVALID_OPTION`
 */
export function buildEnvelope(task: TaskDefinition | string, payload: unknown, options: DispatchOptions, channel: string, now: number, id?: string): Envelope | Promise<Envelope> {
  if (typeof task !== "string" && task.schema) {
    return validatePayload(task.schema, payload, `payload of "${task.name}"`).then(() => makeEnvelope(task, payload, options, channel, now, id));
  }
  return makeEnvelope(task, payload, options, channel, now, id);
}

/** {@link buildEnvelope} after the schema: the JSON check (its message built only for a bad payload), the options, the message. */
function makeEnvelope(task: TaskDefinition | string, payload: unknown, options: DispatchOptions, channel: string, now: number, id: string | undefined): Envelope {
  if (!isPlainJson(payload)) assertJson(payload, `payload of "${typeof task === "string" ? task : task.name}"`);
  const t = envelopeTemplate(task, options, channel, now);
  return createEnvelope({ id, name: t.name, channel: t.channel, payload, headers: t.headers, runAt: t.runAt, priority: t.priority, maxAttempts: t.maxAttempts, dedupKey: t.dedupKey }, now);
}
