/**
 * The envelope that travels, and its versioned JSON wire format (docs/wire-format.md).
 *
 * Glossary:
 * - **message**: one envelope, addressed to a task by `name`, on a `channel`.
 * - **attempt**: how many times a worker has started this message (1 on the first run).
 * - **runAt**: when the message becomes due, in milliseconds since the epoch, by the store's clock.
 * - **dedupKey**: while a message with this key is live (waiting, delayed or running), another
 *   send with the same key returns the first one instead of adding a second.
 */
import { randomFillSync } from "node:crypto";
import { FerryError } from "./errors.ts";
import { assertChannel, assertName } from "./names.ts";

/** The wire format version this code writes and reads. */
export const WIRE_VERSION = 1;

/** Headers carried by every message. All optional; unknown string headers travel unchanged. */
export interface MessageHeaders {
  /** Ties every message of one business flow together (the first message's id by default). */
  correlationId?: string;
  /** The id of the message or event that caused this one. */
  causationId?: string;
  /** Where a reply goes (request/reply). */
  replyTo?: string;
  /** W3C trace context, for tracing from publisher to handler. */
  traceparent?: string;
  /** The event this task message was fanned out from, if any. */
  event?: string;
  [key: string]: string | undefined;
}

/** A message as it travels: immutable once sent (retries never grow it). */
export interface Envelope<P = unknown> {
  /** Wire format version: {@link WIRE_VERSION}. */
  readonly v: number;
  /** Time-ordered unique id (UUIDv7 text). */
  readonly id: string;
  /** The task name. */
  readonly name: string;
  /** The channel (queue) it travels on. */
  readonly channel: string;
  /** JSON payload. */
  readonly payload: P;
  readonly headers: MessageHeaders;
  /** Attempts started so far; 0 until first delivered. */
  readonly attempt: number;
  /** Attempts allowed before the dead-letter store. */
  readonly maxAttempts: number;
  /** Due time, ms since the epoch. */
  readonly runAt: number;
  /** Higher runs first among due messages. Integer in [-1000, 1000]; default 0. */
  readonly priority: number;
  /** Deduplication key, or null. */
  readonly dedupKey: string | null;
  /** Creation time, ms since the epoch. */
  readonly createdAt: number;
}

let lastMs = 0;
let seq = 0;
// Random bytes are drawn 8 KiB at a time: one system call per 800 ids, not one per id.
const pool = Buffer.alloc(8000);
let poolAt = pool.length;
/** The two ASCII hex digits of each byte value. */
const HEX_DIGITS = new Uint8Array(512);
for (let b = 0; b < 256; b++) {
  HEX_DIGITS[2 * b] = "0123456789abcdef".charCodeAt(b >> 4);
  HEX_DIGITS[2 * b + 1] = "0123456789abcdef".charCodeAt(b & 15);
}
/**
 * The id being written, as ASCII. Read out as one flat string: joining the id from
 * pieces with `+` leaves a tree of a dozen string fragments per id until something
 * flattens it, which in a bulk send of 20,000 is garbage the collector copies.
 */
const idText = Buffer.from("00000000-0000-7000-8000-000000000000", "latin1");
let idTextMs = -1;

function putByte(at: number, byte: number): void {
  idText[at] = HEX_DIGITS[2 * byte]!;
  idText[at + 1] = HEX_DIGITS[2 * byte + 1]!;
}

/**
 * A UUIDv7: 48 bits of milliseconds, then a 12-bit counter that keeps ids made in
 * the same millisecond in order, then random bits.
 */
export function newId(now = Date.now()): string {
  if (now <= lastMs) {
    seq++;
    if (seq > 0xfff) {
      lastMs++;
      seq = 0;
    }
  } else {
    lastMs = now;
    seq = 0;
  }
  if (poolAt + 8 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const b = poolAt;
  poolAt += 8;
  if (idTextMs !== lastMs) {
    // 48 bits of milliseconds: 8 hex digits, "-", 4 more.
    const high = Math.floor(lastMs / 0x10000);
    putByte(0, (high >>> 24) & 0xff);
    putByte(2, (high >>> 16) & 0xff);
    putByte(4, (high >>> 8) & 0xff);
    putByte(6, high & 0xff);
    putByte(9, (lastMs >>> 8) & 0xff);
    putByte(11, lastMs & 0xff);
    idTextMs = lastMs;
  }
  putByte(14, 0x70 | (seq >> 8));
  putByte(16, seq & 0xff);
  putByte(19, (pool[b]! & 0x3f) | 0x80);
  putByte(21, pool[b + 1]!);
  for (let k = 0; k < 6; k++) putByte(24 + 2 * k, pool[b + 2 + k]!);
  return idText.toString("latin1", 0, 36);
}

/** What a caller sets when making a message; the rest is filled in. */
export interface EnvelopeInit<P = unknown> {
  name: string;
  channel: string;
  payload: P;
  id?: string;
  headers?: MessageHeaders;
  maxAttempts?: number;
  runAt?: number;
  priority?: number;
  dedupKey?: string | null;
  createdAt?: number;
}

/** Make a new envelope, checking every field. */
export function createEnvelope<P>(init: EnvelopeInit<P>, now = Date.now()): Envelope<P> {
  const id = init.id ?? newId(now);
  const headers: MessageHeaders = { ...init.headers };
  if (headers.correlationId === undefined) headers.correlationId = id;
  const envelope: Envelope<P> = {
    v: WIRE_VERSION,
    id,
    name: init.name,
    channel: init.channel,
    payload: init.payload,
    headers,
    attempt: 0,
    maxAttempts: init.maxAttempts ?? 3,
    runAt: init.runAt ?? now,
    priority: init.priority ?? 0,
    dedupKey: init.dedupKey ?? null,
    createdAt: init.createdAt ?? now,
  };
  checkEnvelope(envelope);
  return envelope;
}

/**
 * Make one envelope per payload, all with the same fields but the id (a new one each)
 * and the payload: the fields are checked once, not per message. The payloads are
 * not checked here (see `assertJson`).
 * @throws FerryError `INVALID_MESSAGE` (or `INVALID_NAME` for a bad name or channel)
 */
export function createEnvelopes<P>(init: Omit<EnvelopeInit<P>, "payload" | "id">, payloads: readonly P[], now = Date.now()): Envelope<P>[] {
  const out: Envelope<P>[] = new Array(payloads.length);
  if (payloads.length === 0) return out;
  const first = createEnvelope({ ...init, payload: payloads[0]! }, now);
  out[0] = first;
  const { name, channel, maxAttempts, runAt, priority, dedupKey, createdAt } = first;
  const base = first.headers;
  const ownCorrelation = init.headers?.correlationId === undefined;
  for (let i = 1; i < payloads.length; i++) {
    if (payloads[i] === undefined) invalid("payload", "is required (use null for none)");
    const id = newId(now);
    const headers: MessageHeaders = { ...base };
    if (ownCorrelation) headers.correlationId = id;
    out[i] = { v: WIRE_VERSION, id, name, channel, payload: payloads[i]!, headers, attempt: 0, maxAttempts, runAt, priority, dedupKey, createdAt };
  }
  return out;
}

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** True when `id` has a message id's form: 1-64 letters, digits, `-` or `_`. */
export function isMessageId(id: unknown): id is string {
  return typeof id === "string" && ID_PATTERN.test(id);
}

// The last channel name that passed assertChannel: a batch on one channel checks it once.
const NONE = {};
let lastChannel: unknown = NONE;

const invalid = (field: string, why: string): never => {
  throw new FerryError("INVALID_MESSAGE", `message field "${field}" ${why}`, { details: { field } });
};

/**
 * Check the fields a store keys, orders and deduplicates by: id, channel,
 * runAt, priority, dedupKey. A transport whose envelopes were already checked
 * in full where they were made (`createEnvelope`, `decodeEnvelope`) may check
 * only these before writing.
 * @throws FerryError `INVALID_MESSAGE` (or `INVALID_NAME` for a bad channel)
 */
export function checkEnvelopeKeys(e: Envelope): void {
  if (!isMessageId(e.id)) invalid("id", "must be 1-64 characters of letters, digits, '-' or '_'");
  if (e.channel !== lastChannel) lastChannel = assertChannel(e.channel);
  if (!Number.isFinite(e.runAt) || e.runAt < 0) invalid("runAt", "must be a time in ms since the epoch");
  if (!Number.isInteger(e.priority) || e.priority < -1000 || e.priority > 1000) invalid("priority", "must be a whole number from -1000 to 1000");
  if (e.dedupKey !== null && (typeof e.dedupKey !== "string" || e.dedupKey.length === 0 || e.dedupKey.length > 200)) invalid("dedupKey", "must be null or 1-200 characters");
}

/**
 * Check an envelope's fields.
 * @throws FerryError `INVALID_MESSAGE` (or `INVALID_NAME` for a bad name or channel)
 */
export function checkEnvelope(e: Envelope): void {
  if (e.v !== WIRE_VERSION) invalid("v", `must be ${WIRE_VERSION}`);
  checkEnvelopeKeys(e);
  assertName(e.name, "task name");
  if (e.payload === undefined) invalid("payload", "is required (use null for none)");
  if (typeof e.headers !== "object" || e.headers === null || Array.isArray(e.headers)) invalid("headers", "must be an object of strings");
  for (const [k, val] of Object.entries(e.headers)) if (val !== undefined && typeof val !== "string") invalid(`headers.${k}`, "must be a string");
  if (!Number.isInteger(e.attempt) || e.attempt < 0) invalid("attempt", "must be a whole number >= 0");
  if (!Number.isInteger(e.maxAttempts) || e.maxAttempts < 1 || e.maxAttempts > 1000) invalid("maxAttempts", "must be a whole number from 1 to 1000");
  if (!Number.isFinite(e.createdAt) || e.createdAt < 0) invalid("createdAt", "must be a time in ms since the epoch");
}

/** Encode an envelope in the wire format (one JSON object). */
export function encodeEnvelope(e: Envelope): string {
  return JSON.stringify(e);
}

function toMs(value: unknown, field: string, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value === "number") return value;
  if (typeof value === "string") {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new FerryError("INVALID_MESSAGE", `message field "${field}" must be ms since the epoch or an ISO 8601 time`, { details: { field } });
}

/**
 * Decode a wire-format message written by anyone (Ferry, PHP, curl). Only `v`,
 * `name`, `channel` and `payload` are required; the rest is filled in.
 * @throws FerryError `INVALID_MESSAGE`
 */
export function decodeEnvelope(input: string | Record<string, unknown>, now = Date.now()): Envelope {
  let raw: unknown;
  if (typeof input === "string") {
    try {
      raw = JSON.parse(input);
    } catch (err) {
      throw new FerryError("INVALID_MESSAGE", "message is not valid JSON", { cause: err });
    }
  } else raw = input;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new FerryError("INVALID_MESSAGE", "message must be a JSON object");
  }
  const r = raw as Record<string, unknown>;
  const id = r.id === undefined || r.id === null ? newId(now) : (r.id as string);
  const headers = (r.headers ?? {}) as MessageHeaders;
  const e: Envelope = {
    v: r.v as number,
    id,
    name: r.name as string,
    channel: r.channel as string,
    payload: r.payload,
    headers: typeof headers === "object" && headers !== null && headers.correlationId === undefined ? { ...headers, correlationId: id } : headers,
    attempt: (r.attempt as number | undefined) ?? 0,
    maxAttempts: (r.maxAttempts as number | undefined) ?? 3,
    runAt: toMs(r.runAt, "runAt", now),
    priority: (r.priority as number | undefined) ?? 0,
    dedupKey: (r.dedupKey as string | null | undefined) ?? null,
    createdAt: toMs(r.createdAt, "createdAt", now),
  };
  checkEnvelope(e);
  return e;
}
