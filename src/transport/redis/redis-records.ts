/**
 * Stored hashes and script replies to Ferry's types. The envelope JSON is
 * stored once; the fields that change (attempt, runAt) live beside it and
 * are laid over it when read.
 */
import type { Envelope } from "../../core/envelope.ts";
import type { AttemptError, Delivery, MessageRecord, MessageState } from "../types.ts";

/** Build an envelope from its stored JSON, its current attempt and runAt ('' or absent: the JSON's own). */
export function envelopeFrom(json: string, attempt: number, runAt: string | undefined): Envelope {
  const m = JSON.parse(json) as { attempt: number; runAt: number };
  m.attempt = attempt;
  if (runAt) m.runAt = Number(runAt);
  return m as unknown as Envelope;
}

/** Parse the reply of `receive.lua` into deliveries (empty when it leased nothing). */
export function parseDeliveries(reply: unknown[], leaseMs: number): Delivery[] {
  const out: Delivery[] = [];
  if (reply.length < 4) return out;
  const leaseExpiresAt = Number(reply[0]) + leaseMs;
  const token = reply[2] as string;
  for (let i = 3; i < reply.length; i += 3) {
    out.push({ message: envelopeFrom(reply[i] as string, Number(reply[i + 1]), reply[i + 2] as string), token, leaseExpiresAt });
  }
  return out;
}

/** Parse an error history (JSON objects joined by newlines). */
export function parseErrors(text: string | undefined): AttemptError[] {
  if (!text) return [];
  return text.split("\n").map((line) => JSON.parse(line) as AttemptError);
}

/**
 * A stored message to a record: its envelope JSON (GET) and its state hash
 * (HGETALL; empty before the first lease, meaning waiting at attempt 0).
 * Null when there is no such message.
 */
export function recordFrom(json: string | null, hash: Record<string, string>): MessageRecord | null {
  if (json === null) return null;
  const record: MessageRecord = {
    message: envelopeFrom(json, Number(hash.a ?? 0), hash.r),
    state: (hash.st ?? "waiting") as MessageState,
    errors: parseErrors(hash.err),
  };
  if (hash.res !== undefined) record.result = JSON.parse(hash.res);
  if (hash.sa !== undefined) record.startedAt = Number(hash.sa);
  if (hash.fa !== undefined) record.finishedAt = Number(hash.fa);
  return record;
}
