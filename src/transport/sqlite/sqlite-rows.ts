/**
 * Rows to envelopes and run records. JSON columns are parsed exactly once, here.
 */
import type { Envelope } from "../../core/envelope.ts";
import type { AttemptError, MessageRecord, MessageState } from "../types.ts";
import type { EnvelopeRow, LeasedRow, RecordRow } from "./sqlite-statements.ts";

/** Rebuild the envelope stored in a row. */
export function rowToEnvelope(r: EnvelopeRow): Envelope {
  return {
    v: r.v,
    id: r.id,
    name: r.name,
    channel: r.channel,
    payload: JSON.parse(r.payload) as unknown,
    headers: JSON.parse(r.headers) as Envelope["headers"],
    attempt: r.attempt,
    maxAttempts: r.max_attempts,
    runAt: r.run_at,
    priority: r.priority,
    dedupKey: r.dedup_key,
    createdAt: r.created_at,
  };
}

/** The public state of an internal one ('ready' and 'delayed' are both "waiting"). */
export function publicState(state: string): MessageState {
  return state === "ready" || state === "delayed" ? "waiting" : (state as MessageState);
}

/** The internal states behind a public one. */
export function internalStates(state: MessageState): string[] {
  return state === "waiting" ? ["ready", "delayed"] : [state];
}

/** Rebuild the run record stored in a row. */
export function rowToRecord(r: RecordRow): MessageRecord {
  const record: MessageRecord = {
    message: rowToEnvelope(r),
    state: publicState(r.state),
    errors: r.errors === null ? [] : (JSON.parse(r.errors) as AttemptError[]),
  };
  if (r.result !== null) record.result = JSON.parse(r.result) as unknown;
  if (r.started_at !== null) record.startedAt = r.started_at;
  if (r.finished_at !== null) record.finishedAt = r.finished_at;
  return record;
}

/** Rebuild the envelope of a leased row (raw array). */
export function leasedToEnvelope(r: LeasedRow): Envelope {
  return {
    v: r[2],
    id: r[1],
    name: r[4],
    channel: r[3],
    payload: JSON.parse(r[5]) as unknown,
    headers: JSON.parse(r[6]) as Envelope["headers"],
    attempt: r[7],
    maxAttempts: r[8],
    runAt: r[9],
    priority: r[10],
    dedupKey: r[11],
    createdAt: r[12],
  };
}

/** Order leased rows for delivery: priority desc, then due time, then insertion. */
export function byDeliveryOrder(a: LeasedRow, b: LeasedRow): number {
  return b[10] - a[10] || a[9] - b[9] || a[0] - b[0];
}

/** The rowid a lease token carries (`<seq>:<batch>`), or -1 for a malformed token. */
export function tokenSeq(token: string): number {
  if (typeof token !== "string") return -1;
  const colon = token.indexOf(":");
  if (colon < 1 || colon > 16) return -1;
  const seq = Number(token.slice(0, colon));
  return Number.isSafeInteger(seq) && seq > 0 ? seq : -1;
}
