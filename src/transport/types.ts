/**
 * The transport boundary. The core is small (send, receive with a lease, ack,
 * retry at a time, dead-letter, extend, close); everything else is an optional
 * capability found by a type guard.
 *
 * Glossary:
 * - **state** of a stored message: `waiting` (due now or later; "delayed" when
 *   runAt is in the future), `active` (leased to a worker), `completed`,
 *   `cancelled`, `dead` (in the dead-letter store).
 * - **lease**: a time-bound claim on one message by one receiver. When it ends
 *   without an ack, the message is due again and the next receive counts a new attempt.
 * - **token**: the fencing token of a lease. Every receive issues a new one; ack,
 *   retry, dead-letter and extend are refused (return false) unless the token is
 *   the message's current one and the message is still active.
 *
 * Policy (how many attempts, what backoff, when to give up) lives in the core
 * worker; a transport only stores, leases, redelivers at a time and moves aside.
 */
import type { Envelope } from "../core/envelope.ts";

/** Terminal and live states of a stored message. */
export type MessageState = "waiting" | "active" | "completed" | "cancelled" | "dead";

/** All message states, in display order. */
export const MESSAGE_STATES: readonly MessageState[] = ["waiting", "active", "completed", "cancelled", "dead"];

/** The outcome of sending one message. */
export interface SendReceipt {
  /** The stored message's id: the sent one, or the live one holding the same dedupKey. */
  id: string;
  /** True when a live message with the same dedupKey already existed; nothing new was stored. */
  deduplicated: boolean;
}

/** One leased message handed to a worker. */
export interface Delivery {
  /** The envelope, with `attempt` already counting this delivery (1 on the first). */
  message: Envelope;
  /** Fencing token of this lease. */
  token: string;
  /** When the lease ends unless extended (ms since the epoch, store's clock). */
  leaseExpiresAt: number;
}

/** What a receive asks for. */
export interface ReceiveRequest {
  /** Channels to take from. */
  channels: readonly string[];
  /** At most this many deliveries (a worker's free slots). */
  max: number;
  /** Lease length in milliseconds. */
  leaseMs: number;
  /**
   * Wait up to this long for work when none is due (0: return at once). Waiting
   * must not busy-poll: block, listen, or sleep until the next due time.
   */
  waitMs: number;
  /** Aborts the wait; receive then resolves with what it has (often nothing). */
  signal?: AbortSignal;
}

/** A reference to one lease: the message and the token that proves the lease. */
export interface LeaseRef {
  id: string;
  token: string;
}

/** One attempt's failure, kept in a capped history on the message. */
export interface AttemptError {
  /** When the attempt ended (ms since the epoch). */
  at: number;
  attempt: number;
  /** A stable code when known (`TIMEOUT`, `LEASE_LOST`, ...), else `HANDLER_FAILED`. */
  code: string;
  message: string;
}

/** Complete a message (ack). */
export interface AckItem extends LeaseRef {
  /** `completed` normally; `cancelled` when the handler cancelled it. */
  status?: "completed" | "cancelled";
  /** The handler's result (JSON), kept with the message. */
  result?: unknown;
}

/** Put a message back, due at a time. */
export interface RetryItem extends LeaseRef {
  /** When it is due again (ms since the epoch). */
  runAt: number;
  /** False for a snooze: the attempt counter goes back down, so no attempt is used. */
  attemptUsed: boolean;
  /** Why, appended to the message's capped error history (absent for snooze and drain). */
  error?: AttemptError;
}

/** Move a message to the dead-letter store. */
export interface DeadItem extends LeaseRef {
  error: AttemptError;
}

/** The small core every transport implements. */
export interface Transport {
  /** A short name for logs and metrics (`memory`, `sqlite`, `redis`, ...). */
  readonly kind: string;
  /**
   * Store messages, in as few round trips as the store allows. Receipts come back
   * in the order of `messages`. Each message is stored whole or not at all; a batch
   * is all or nothing in one transaction on SQLite and PostgreSQL, per chunk of
   * `sendChunk` (250) on Redis, per message on RabbitMQ. A failed send rejects, and
   * sending the same envelopes again stores only those that are missing (ids are unique).
   */
  send(messages: readonly Envelope[]): Promise<SendReceipt[]>;
  /** Lease up to `max` due messages, highest priority first, then oldest due. */
  receive(request: ReceiveRequest): Promise<Delivery[]>;
  /** Complete messages. Per item: true, or false when the lease was lost (fencing). */
  ack(items: readonly AckItem[]): Promise<boolean[]>;
  /** Return messages to waiting, due at `runAt`. Per item: true, or false when the lease was lost. */
  retry(items: readonly RetryItem[]): Promise<boolean[]>;
  /** Move messages to the dead-letter store. Per item: true, or false when the lease was lost. */
  deadLetter(items: readonly DeadItem[]): Promise<boolean[]>;
  /** Extend leases to now + `leaseMs`. Per item: true, or false when the lease was lost. */
  extend(items: readonly LeaseRef[], leaseMs: number): Promise<boolean[]>;
  /** Release connections and wake any waiting receive. Idempotent. */
  close(): Promise<void>;
}

/** Counts of messages in one channel by state. */
export interface ChannelCounts {
  channel: string;
  waiting: number;
  /** Waiting messages whose runAt is in the future (included in `waiting`). */
  delayed: number;
  active: number;
  completed: number;
  cancelled: number;
  dead: number;
}

/** A stored message with its run record: state, attempts, timing, errors, result. */
export interface MessageRecord {
  message: Envelope;
  state: MessageState;
  /** Capped history of failed attempts, oldest first. */
  errors: AttemptError[];
  /** The handler's result, once completed. */
  result?: unknown;
  /** When the current or last attempt started (ms). */
  startedAt?: number;
  /** When it reached a terminal state (ms). */
  finishedAt?: number;
}

/** Query for {@link Inspectable.list}. */
export interface ListQuery {
  state: MessageState;
  channel?: string;
  /** At most this many, newest first. Default 50. */
  limit?: number;
  /** Skip this many. Default 0. */
  offset?: number;
}

/** Read-only inspection, for stats, the CLI and the dashboard. */
export interface Inspectable {
  counts(): Promise<ChannelCounts[]>;
  list(query: ListQuery): Promise<MessageRecord[]>;
  get(id: string): Promise<MessageRecord | null>;
}

/** Acting on the dead-letter store. */
export interface DeadLetterAdmin {
  /** Move dead messages back to waiting, due now, with attempts reset. Returns the ids moved. */
  replay(ids: readonly string[]): Promise<string[]>;
  /** Delete dead messages for good. Returns the ids removed. */
  discard(ids: readonly string[]): Promise<string[]>;
}

/** Deleting finished messages past their retention. */
export interface Prunable {
  /** Delete completed/cancelled messages finished before `before` (ms). Returns how many. */
  prune(options: { before: number; states?: readonly MessageState[] }): Promise<number>;
}

/**
 * Enqueue inside the caller's own database transaction (an outbox without a
 * relay): the messages exist if and only if that transaction commits.
 */
export interface TransactionalSend {
  /** Send using `transaction`, a client of the store's driver inside `BEGIN` (a `pg` client for PostgreSQL). */
  sendWithin(transaction: unknown, messages: readonly Envelope[]): Promise<SendReceipt[]>;
}

/** Pausing and resuming channels: a paused channel keeps its messages and delivers none. */
export interface Pausable {
  pause(channel: string): Promise<void>;
  resume(channel: string): Promise<void>;
  paused(): Promise<string[]>;
}

/** Type guard: can this transport enqueue inside a caller's transaction? */
export function isTransactional(t: Transport): t is Transport & TransactionalSend {
  return typeof (t as Partial<TransactionalSend>).sendWithin === "function";
}

/** Type guard: can channels on this transport be paused? */
export function isPausable(t: Transport): t is Transport & Pausable {
  return typeof (t as Partial<Pausable>).pause === "function" && typeof (t as Partial<Pausable>).resume === "function";
}

/** Type guard: can this transport be inspected? */
export function isInspectable(t: Transport): t is Transport & Inspectable {
  return typeof (t as Partial<Inspectable>).counts === "function" && typeof (t as Partial<Inspectable>).get === "function";
}

/** Type guard: does this transport manage a dead-letter store? */
export function hasDeadLetterAdmin(t: Transport): t is Transport & DeadLetterAdmin {
  return typeof (t as Partial<DeadLetterAdmin>).replay === "function" && typeof (t as Partial<DeadLetterAdmin>).discard === "function";
}

/** Type guard: can this transport prune finished messages? */
export function isPrunable(t: Transport): t is Transport & Prunable {
  return typeof (t as Partial<Prunable>).prune === "function";
}

/** How many errors a message keeps in its history. */
export const MAX_ERROR_HISTORY = 10;

/** Append to a capped error history (keeps the first and the newest). */
export function appendError(history: readonly AttemptError[], error: AttemptError): AttemptError[] {
  const next = [...history, error];
  if (next.length <= MAX_ERROR_HISTORY) return next;
  return [next[0]!, ...next.slice(next.length - (MAX_ERROR_HISTORY - 1))];
}
