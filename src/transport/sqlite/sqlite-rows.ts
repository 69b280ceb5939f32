/**
 * Rows to envelopes and run records. JSON columns are parsed exactly once, here.
 */
import type { Envelope } from "../../core/envelope.ts";
import type { AttemptError, MessageRecord, MessageState } from "../types.ts";
import type { EnvelopeRow, RecordRow } from "./sqlite-statements.ts";

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

/** Order leased rows for delivery: priority desc, then due time, then insertion. */
export function byDeliveryOrder(a: EnvelopeRow, b: EnvelopeRow): number {
  return b.priority - a.priority || a.run_at - b.run_at || a.seq - b.seq;
}
