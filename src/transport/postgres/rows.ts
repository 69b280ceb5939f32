/**
 * Rows to Ferry's types and back: envelopes from rows, errors made fit for jsonb,
 * and the checks that refuse a fenced item without asking the server.
 */
import type { Envelope } from "../../core/envelope.ts";
import type { AttemptError, LeaseRef, MessageState } from "../types.ts";

/** Escapes that json_to_recordset refuses to unescape (U+0000, lone surrogates), though json columns keep them. */
export const UNSAFE_ESCAPE = /\\u(?:0000|d[89a-f])/;
/** A token this transport can have issued: a positive bigint in decimal. */
export const TOKEN_PATTERN = /^[1-9][0-9]{0,17}$/;

/** Columns that rebuild an envelope. */
export interface EnvelopeRow {
  id: string;
  name: string;
  channel: string;
  payload: unknown;
  headers: Envelope["headers"];
  attempt: number;
  max_attempts: number;
  run_at: number;
  priority: number;
  dedup_key: string | null;
  created_at: number;
}

/** A row returned by receive (every column but `wait` null when nothing was leased). */
export interface LeaseRow extends EnvelopeRow {
  token: string;
  due_at: number;
  was_due: number;
  seq: string;
  /** From the statements that report it, when fewer rows were leased than asked: ms until the next live row is due (Infinity: none). */
  wait?: number | null;
}

/** A run record row (list, get). */
export interface RecordRow extends EnvelopeRow {
  state: MessageState;
  errors: AttemptError[];
  result: unknown;
  /** False when no result was stored (SQL NULL), true for any JSON value, `null` included. */
  has_result: boolean;
  started_at: number | null;
  finished_at: number | null;
}

/** The envelope of a row. */
export function toEnvelope(r: EnvelopeRow): Envelope {
  return {
    v: 1,
    id: r.id,
    name: r.name,
    channel: r.channel,
    payload: r.payload,
    headers: r.headers,
    attempt: r.attempt,
    maxAttempts: r.max_attempts,
    runAt: r.run_at,
    priority: r.priority,
    dedupKey: r.dedup_key,
    createdAt: r.created_at,
  };
}

/** An error jsonb can hold: U+0000 and lone surrogates become U+FFFD. */
export function storedError(e: AttemptError): AttemptError {
  const clean = (s: string) => s.replace(/\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
  return { at: e.at, attempt: e.attempt, code: clean(String(e.code)), message: clean(String(e.message)) };
}

/**
 * Keep the first occurrence of each id with a well-formed token; the rest are
 * refused without asking the server. Returns the items to send and their positions.
 */
export function fenceable<T extends LeaseRef>(items: readonly T[]): { send: T[]; index: number[] } {
  const seen = new Set<string>();
  const send: T[] = [];
  const index: number[] = [];
  items.forEach((item, i) => {
    if (typeof item.id !== "string" || typeof item.token !== "string" || !TOKEN_PATTERN.test(item.token) || seen.has(item.id)) return;
    seen.add(item.id);
    send.push(item);
    index.push(i);
  });
  return { send, index };
}

/** The ids in `hit`, in the order of `ids`, each once. */
export function firstOf(ids: readonly string[], hit: Set<string>): string[] {
  const out: string[] = [];
  for (const id of ids) if (hit.delete(id)) out.push(id);
  return out;
}
