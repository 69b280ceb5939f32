/**
 * Handoff: a send of this process leases, as it inserts them, the due messages
 * whose channel has a consumer loop of this process asleep in a receive, and hands
 * them to that loop's read-ahead. The consumer then starts them without a lease
 * statement of its own: one round trip (and one row update) less per message on the
 * path from send to handler, when the queue is otherwise empty.
 *
 * The lease rides the send's own durable commit, and the statement leases only rows
 * due by the database clock in channels not paused. Rows handed over and not taken
 * go back to waiting as read-ahead does (a third of the lease, an aborted loop, close).
 */
import type { Envelope } from "../../core/envelope.ts";
import type { LeaseRef } from "../types.ts";
import type { Handoff, ReadAhead } from "./read-ahead.ts";
import { toLeased, type LeaseRow } from "./rows.ts";

/** A row a send inserted; a row the leasing send leased also carries a receive's columns. */
export type SentRow = { id: string; channel: string; leased?: boolean } & Partial<LeaseRow>;

/**
 * Offers for a send: each message due now (by this clock; the statement checks the
 * database's) whose channel has a consumer loop asleep with room gets a handoff.
 * Undefined when none does; every handoff given must go through {@link handOver}.
 */
export function offerHandoffs(ahead: ReadAhead, messages: readonly Envelope[]): (Handoff | undefined)[] | undefined {
  if (!ahead.anySleeping) return undefined;
  let out: (Handoff | undefined)[] | undefined;
  const now = Date.now();
  const full = new Set<string>();
  messages.forEach((m, i) => {
    if (m.runAt > now || full.has(m.channel)) return;
    const handoff = ahead.offer(m.channel);
    if (!handoff) return void full.add(m.channel);
    (out ??= new Array<Handoff | undefined>(messages.length))[i] = handoff;
  });
  return out;
}

/**
 * Settle a send's handoffs with the rows it inserted (none if it failed): each row it
 * leased goes to the consumer loop it was offered to; offers whose row was not leased
 * (not due by the database clock, paused, a duplicate) lapse.
 */
export function handOver(
  ahead: ReadAhead,
  messages: readonly Envelope[],
  handoffs: readonly (Handoff | undefined)[],
  rows: readonly SentRow[],
  release: (items: readonly LeaseRef[]) => Promise<void>,
): void {
  const byId = new Map<string, Handoff[]>();
  handoffs.forEach((h, i) => {
    if (!h) return;
    const id = messages[i]!.id;
    const list = byId.get(id);
    if (list) list.push(h);
    else byId.set(id, [h]);
  });
  for (const r of rows) {
    if (!r.leased) continue;
    const row = r as SentRow & LeaseRow;
    const handoff = byId.get(row.id)?.pop();
    if (handoff) ahead.settle(handoff, toLeased(row));
    else void release([{ id: row.id, token: row.token }]).catch(() => {});
  }
  for (const list of byId.values()) for (const h of list) ahead.settle(h);
}
