/**
 * The hot path: each batch (send, receive, ack, retry, dead-letter, extend) is
 * one `BEGIN IMMEDIATE` transaction over prepared statements. Driver errors
 * come out as FerryError `TRANSPORT_UNAVAILABLE` (see sqlite-errors.ts).
 */
import type Database from "better-sqlite3";
import type { Envelope } from "../../core/envelope.ts";
import { FerryError } from "../../core/errors.ts";
import type { AckItem, DeadItem, LeaseRef, RetryItem, SendReceipt } from "../types.ts";
import { guarded } from "./sqlite-errors.ts";
import { tokenSeq } from "./sqlite-rows.ts";
import type { LeasedRow, Statements } from "./sqlite-statements.ts";

/** What one receive transaction found. */
export interface ReceiveOutcome {
  /** The leased rows, in no particular order. */
  rows: LeasedRow[];
  /** The batch token: each row's lease token is `<seq>:<batch token>`. */
  token: string;
  /** When nothing was leased: the earliest time something in the open channels becomes due (Infinity: nothing pending). */
  nextDue: number;
}

/** The batch operations of one connection. */
export interface Batches {
  send(messages: readonly Envelope[], now: number): SendReceipt[];
  receive(channels: readonly string[], max: number, leaseMs: number, now: number): ReceiveOutcome;
  ack(items: readonly AckItem[], now: number): boolean[];
  retry(items: readonly RetryItem[], now: number): boolean[];
  deadLetter(items: readonly DeadItem[], now: number): boolean[];
  extend(items: readonly LeaseRef[], expiresAt: number): boolean[];
}

/**
 * Build the batch transactions of one connection.
 * @param newToken returns a batch token unique to this connection (and, with its random prefix, to the file)
 */
/** `ackDeletes`: an ack deletes the row (retention keeps no completed records). */
export function createBatches(db: Database.Database, st: Statements, path: string, newToken: () => string, ackDeletes = false): Batches {
  const tx = <A extends unknown[], R>(operation: string, fn: (...args: A) => R) => guarded(db.transaction(fn).immediate, operation, path);

  const send = tx("send", (messages: readonly Envelope[], now: number): SendReceipt[] => {
    const receipts: SendReceipt[] = new Array(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const payload = JSON.stringify(m.payload);
      if (payload === undefined) throw new FerryError("INVALID_MESSAGE", `message ${m.id}: payload is not JSON (use null for none)`, { details: { field: "payload" } });
      const state = m.runAt <= now ? "ready" : "delayed";
      const { changes } = st.insert.run(m.id, m.v, m.channel, m.name, payload, JSON.stringify(m.headers), m.maxAttempts, m.runAt, m.priority, m.dedupKey, m.dedupKey, m.createdAt, state);
      if (changes === 1) receipts[i] = { id: m.id, deduplicated: false };
      else {
        // An id or dedupKey conflict: report the live holder of the key, else the id itself.
        const holder = m.dedupKey === null ? undefined : (st.dedupHolder.get(m.dedupKey) as string | undefined);
        receipts[i] = { id: holder ?? m.id, deduplicated: true };
      }
    }
    return receipts;
  });

  const receive = tx("receive", (channels: readonly string[], max: number, leaseMs: number, now: number): ReceiveOutcome => {
    const paused = st.pausedList.all() as string[];
    const open = paused.length === 0 ? channels : channels.filter((c) => !paused.includes(c));
    if (open.length === 0) return { rows: [], token: "", nextDue: Infinity };
    for (const c of open) st.promote.run(c, now);
    const token = newToken();
    const params: unknown[] = [token, now + leaseMs, now];
    for (const c of open) params.push(c, now, max);
    if (open.length > 1) params.push(max);
    const rows = st.receive(open.length).all(...params) as LeasedRow[];
    if (rows.length > 0) return { rows, token, nextDue: now };
    let nextDue = Infinity;
    for (const c of open) {
      const delayed = st.nextDelayed.get(c) as number | null;
      const lease = st.nextLeaseExpiry.get(c) as number | null;
      if (delayed !== null && delayed < nextDue) nextDue = delayed;
      if (lease !== null && lease < nextDue) nextDue = lease;
    }
    return { rows, token, nextDue };
  });

  const ack = tx("ack", (items: readonly AckItem[], now: number): boolean[] =>
    items.map((it) => {
      if (ackDeletes) return st.ackDelete.run(tokenSeq(it.token), it.token, it.id).changes === 1;
      const result = it.result === undefined ? null : JSON.stringify(it.result);
      return st.ack.run(it.status ?? "completed", result, now, tokenSeq(it.token), it.token, it.id).changes === 1;
    }),
  );

  const retry = tx("retry", (items: readonly RetryItem[], now: number): boolean[] =>
    items.map((it) => {
      const state = it.runAt <= now ? "ready" : "delayed";
      const error = it.error === undefined ? null : JSON.stringify(it.error);
      return st.retry.run({ state, runAt: it.runAt, used: it.attemptUsed ? 1 : 0, error, seq: tokenSeq(it.token), token: it.token, id: it.id }).changes === 1;
    }),
  );

  const deadLetter = tx("deadLetter", (items: readonly DeadItem[], now: number): boolean[] =>
    items.map((it) => st.dead.run({ now, error: JSON.stringify(it.error), seq: tokenSeq(it.token), token: it.token, id: it.id }).changes === 1),
  );

  const extend = tx("extend", (items: readonly LeaseRef[], expiresAt: number): boolean[] =>
    items.map((it) => st.extend.run(expiresAt, tokenSeq(it.token), it.token, it.id).changes === 1),
  );

  return { send, receive, ack, retry, deadLetter, extend };
}
