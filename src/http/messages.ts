/**
 * Finding a message by id across the Ferry's transports, and the JSON view of
 * its state that `GET /v1/messages/:id` and its event stream answer with.
 */
import { isMessageId } from "../core/envelope.ts";
import type { Ferry } from "../bus/ferry.ts";
import { hasDeadLetterAdmin, isInspectable, type AttemptError, type Inspectable, type MessageRecord, type MessageState, type Transport } from "../transport/types.ts";
import { HttpError } from "./http-errors.ts";

/** The status of one message as the API shows it (no payload: it may hold personal data). */
export interface MessageView {
  id: string;
  task: string;
  channel: string;
  state: MessageState;
  attempt: number;
  maxAttempts: number;
  runAt: number;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  correlationId: string | null;
  errors: AttemptError[];
  result: unknown;
}

/** States after which a message never changes again (dead may be replayed by an admin). */
export const TERMINAL_STATES: ReadonlySet<MessageState> = new Set(["completed", "cancelled", "dead"]);

/**
 * Check a message id's form.
 * @throws HttpError `INVALID_ID`
 */
export function checkId(id: string): string {
  if (!isMessageId(id)) throw new HttpError("INVALID_ID", "a message id is 1-64 characters of letters, digits, \"-\" or \"_\"");
  return id;
}

/** The API view of a stored message. */
export function viewOf(record: MessageRecord): MessageView {
  const m = record.message;
  return {
    id: m.id,
    task: m.name,
    channel: m.channel,
    state: record.state,
    attempt: m.attempt,
    maxAttempts: m.maxAttempts,
    runAt: m.runAt,
    createdAt: m.createdAt,
    startedAt: record.startedAt ?? null,
    finishedAt: record.finishedAt ?? null,
    correlationId: m.headers.correlationId ?? null,
    errors: record.errors,
    result: record.result === undefined ? null : record.result,
  };
}

/** The distinct transports a Ferry uses: its default channel's and every registered channel's. */
export async function transportsOf(ferry: Ferry): Promise<Transport[]> {
  const channels = new Set([ferry.defaultChannel, ...ferry.channels()]);
  const seen = new Set<Transport>();
  for (const channel of channels) seen.add(await ferry.transport(channel));
  return [...seen];
}

/** A message found by id, with the transport that holds it. */
export interface Found {
  record: MessageRecord;
  transport: Transport & Inspectable;
}

/**
 * Look a message up in every inspectable transport of the Ferry.
 * @throws HttpError `NOT_FOUND`; FerryError `NOT_SUPPORTED` when no transport can be inspected.
 */
export async function findMessage(ferry: Ferry, id: string): Promise<Found> {
  checkId(id);
  let inspectable = 0;
  for (const transport of await transportsOf(ferry)) {
    if (!isInspectable(transport)) continue;
    inspectable++;
    const record = await transport.get(id);
    if (record) return { record, transport };
  }
  if (inspectable === 0) throw new HttpError("NOT_SUPPORTED", "no transport of this Ferry can look messages up by id", undefined, 501);
  throw new HttpError("NOT_FOUND", `no message ${id}; it may never have existed or has been pruned`);
}

/**
 * Replay or discard a dead message.
 * @throws HttpError `NOT_FOUND`, `NOT_DEAD`
 */
export async function actOnDead(ferry: Ferry, id: string, action: "replay" | "discard"): Promise<MessageView> {
  const { record, transport } = await findMessage(ferry, id);
  if (!hasDeadLetterAdmin(transport)) throw new HttpError("NOT_SUPPORTED", `the ${transport.kind} transport has no dead-letter store to act on`, undefined, 501);
  if (record.state !== "dead") throw new HttpError("NOT_DEAD", `message ${id} is ${record.state}, not dead; only dead messages can be replayed or discarded`, { state: record.state });
  const done = action === "replay" ? await transport.replay([id]) : await transport.discard([id]);
  if (!done.includes(id)) throw new HttpError("NOT_DEAD", `message ${id} left the dead-letter store meanwhile`);
  return viewOf(record);
}
