/**
 * The in-process transport: unit tests and the testing helpers. Same semantics
 * as the durable transports (delays, priorities, dedup, leases, fencing), with
 * an injectable clock. Nothing survives the process.
 */
import { systemClock, type Clock } from "../../core/clock.ts";
import type { Envelope } from "../../core/envelope.ts";
import { FerryError } from "../../core/errors.ts";
import {
  appendError,
  MESSAGE_STATES,
  type AckItem,
  type AttemptError,
  type ChannelCounts,
  type DeadItem,
  type DeadLetterAdmin,
  type Delivery,
  type Inspectable,
  type LeaseRef,
  type ListQuery,
  type MessageRecord,
  type MessageState,
  type Prunable,
  type ReceiveRequest,
  type RetryItem,
  type SendReceipt,
  type Transport,
} from "../types.ts";

interface Stored {
  message: Envelope;
  state: MessageState;
  token: string;
  leaseExpiresAt: number;
  errors: AttemptError[];
  result?: unknown;
  startedAt?: number;
  finishedAt?: number;
  seq: number;
}

/** Options of {@link MemoryTransport}. */
export interface MemoryTransportOptions {
  /** The clock; default the system clock. Tests pass a `VirtualClock`. */
  clock?: Clock;
  /** A name for logs. Default `"memory"`. */
  name?: string | undefined;
}

/** An in-process transport with the full capability set. */
export class MemoryTransport implements Transport, Inspectable, DeadLetterAdmin, Prunable {
  readonly kind = "memory";
  readonly clock: Clock;
  #messages = new Map<string, Stored>();
  #live = new Set<Stored>();
  #dedup = new Map<string, Stored>();
  #wakers = new Set<() => void>();
  #tokens = 0;
  #seq = 0;
  #closed = false;

  constructor(options: MemoryTransportOptions = {}) {
    this.clock = options.clock ?? systemClock;
  }

  #checkOpen(): void {
    if (this.#closed) throw new FerryError("TRANSPORT_CLOSED", "the memory transport is closed; create a new Ferry to continue");
  }

  async send(messages: readonly Envelope[]): Promise<SendReceipt[]> {
    this.#checkOpen();
    const receipts: SendReceipt[] = [];
    for (const message of messages) {
      const existing = message.dedupKey === null ? undefined : this.#dedup.get(message.dedupKey);
      if (existing) {
        receipts.push({ id: existing.message.id, deduplicated: true });
        continue;
      }
      if (this.#messages.has(message.id)) {
        receipts.push({ id: message.id, deduplicated: true });
        continue;
      }
      const stored: Stored = { message: { ...message, attempt: 0 }, state: "waiting", token: "", leaseExpiresAt: 0, errors: [], seq: this.#seq++ };
      this.#messages.set(message.id, stored);
      this.#live.add(stored);
      if (message.dedupKey !== null) this.#dedup.set(message.dedupKey, stored);
      receipts.push({ id: message.id, deduplicated: false });
    }
    this.#wake();
    return receipts;
  }

  #wake(): void {
    for (const w of this.#wakers) w();
  }

  #dueAt(s: Stored): number {
    return s.state === "active" ? s.leaseExpiresAt : s.message.runAt;
  }

  async receive(request: ReceiveRequest): Promise<Delivery[]> {
    const deadline = this.clock.now() + request.waitMs;
    const channels = new Set(request.channels);
    for (;;) {
      this.#checkOpen();
      const now = this.clock.now();
      const due: Stored[] = [];
      let nextDue = Infinity;
      for (const s of this.#live) {
        if (!channels.has(s.message.channel)) continue;
        const at = this.#dueAt(s);
        if (at <= now) due.push(s);
        else if (at < nextDue) nextDue = at;
      }
      if (due.length > 0) {
        due.sort((a, b) => b.message.priority - a.message.priority || a.message.runAt - b.message.runAt || a.seq - b.seq);
        return due.slice(0, request.max).map((s) => this.#lease(s, now, request.leaseMs));
      }
      const wait = Math.min(deadline, nextDue) - now;
      if (wait <= 0 && nextDue > deadline) return [];
      if (request.signal?.aborted) return [];
      await this.#sleep(Math.max(0, wait), request.signal);
      if (request.signal?.aborted || this.#closed) return [];
    }
  }

  async #sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    const wake = new AbortController();
    const onWake = () => wake.abort();
    this.#wakers.add(onWake);
    const onAbort = () => wake.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await this.clock.sleep(ms, wake.signal);
    } finally {
      this.#wakers.delete(onWake);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  #lease(s: Stored, now: number, leaseMs: number): Delivery {
    s.state = "active";
    s.token = String(++this.#tokens);
    s.leaseExpiresAt = now + leaseMs;
    s.startedAt = now;
    s.message = { ...s.message, attempt: s.message.attempt + 1 };
    return { message: s.message, token: s.token, leaseExpiresAt: s.leaseExpiresAt };
  }

  #held(ref: LeaseRef): Stored | undefined {
    const s = this.#messages.get(ref.id);
    return s && s.state === "active" && s.token === ref.token ? s : undefined;
  }

  #finish(s: Stored, state: MessageState): void {
    s.state = state;
    s.token = "";
    s.finishedAt = this.clock.now();
    this.#live.delete(s);
    if (s.message.dedupKey !== null && this.#dedup.get(s.message.dedupKey) === s) this.#dedup.delete(s.message.dedupKey);
  }

  async ack(items: readonly AckItem[]): Promise<boolean[]> {
    this.#checkOpen();
    return items.map((item) => {
      const s = this.#held(item);
      if (!s) return false;
      s.result = item.result;
      this.#finish(s, item.status ?? "completed");
      return true;
    });
  }

  async retry(items: readonly RetryItem[]): Promise<boolean[]> {
    this.#checkOpen();
    const out = items.map((item) => {
      const s = this.#held(item);
      if (!s) return false;
      s.state = "waiting";
      s.token = "";
      if (item.error) s.errors = appendError(s.errors, item.error);
      s.message = { ...s.message, runAt: item.runAt, attempt: item.attemptUsed ? s.message.attempt : Math.max(0, s.message.attempt - 1) };
      return true;
    });
    this.#wake();
    return out;
  }

  async deadLetter(items: readonly DeadItem[]): Promise<boolean[]> {
    this.#checkOpen();
    return items.map((item) => {
      const s = this.#held(item);
      if (!s) return false;
      s.errors = appendError(s.errors, item.error);
      this.#finish(s, "dead");
      return true;
    });
  }

  async extend(items: readonly LeaseRef[], leaseMs: number): Promise<boolean[]> {
    this.#checkOpen();
    const now = this.clock.now();
    return items.map((item) => {
      const s = this.#held(item);
      if (!s) return false;
      s.leaseExpiresAt = now + leaseMs;
      return true;
    });
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake();
  }

  async counts(): Promise<ChannelCounts[]> {
    const now = this.clock.now();
    const byChannel = new Map<string, ChannelCounts>();
    for (const s of this.#messages.values()) {
      const ch = s.message.channel;
      let c = byChannel.get(ch);
      if (!c) byChannel.set(ch, (c = { channel: ch, waiting: 0, delayed: 0, active: 0, completed: 0, cancelled: 0, dead: 0 }));
      c[s.state]++;
      if (s.state === "waiting" && s.message.runAt > now) c.delayed++;
    }
    return [...byChannel.values()].sort((a, b) => a.channel.localeCompare(b.channel));
  }

  #record(s: Stored): MessageRecord {
    const r: MessageRecord = { message: s.message, state: s.state, errors: [...s.errors] };
    if (s.result !== undefined) r.result = s.result;
    if (s.startedAt !== undefined) r.startedAt = s.startedAt;
    if (s.finishedAt !== undefined) r.finishedAt = s.finishedAt;
    return r;
  }

  async list(query: ListQuery): Promise<MessageRecord[]> {
    if (!MESSAGE_STATES.includes(query.state)) throw new FerryError("INVALID_OPTION", `state must be one of ${MESSAGE_STATES.join(", ")}`);
    const matches = [...this.#messages.values()].filter((s) => s.state === query.state && (query.channel === undefined || s.message.channel === query.channel));
    matches.sort((a, b) => b.seq - a.seq);
    const offset = query.offset ?? 0;
    return matches.slice(offset, offset + (query.limit ?? 50)).map((s) => this.#record(s));
  }

  async get(id: string): Promise<MessageRecord | null> {
    const s = this.#messages.get(id);
    return s ? this.#record(s) : null;
  }

  async replay(ids: readonly string[]): Promise<string[]> {
    this.#checkOpen();
    const moved: string[] = [];
    for (const id of ids) {
      const s = this.#messages.get(id);
      if (!s || s.state !== "dead") continue;
      s.state = "waiting";
      s.finishedAt = undefined;
      s.message = { ...s.message, attempt: 0, runAt: this.clock.now() };
      this.#live.add(s);
      if (s.message.dedupKey !== null && !this.#dedup.has(s.message.dedupKey)) this.#dedup.set(s.message.dedupKey, s);
      moved.push(id);
    }
    this.#wake();
    return moved;
  }

  async discard(ids: readonly string[]): Promise<string[]> {
    this.#checkOpen();
    const removed: string[] = [];
    for (const id of ids) {
      const s = this.#messages.get(id);
      if (!s || s.state !== "dead") continue;
      this.#messages.delete(id);
      removed.push(id);
    }
    return removed;
  }

  async prune(options: { before: number; states?: readonly MessageState[] }): Promise<number> {
    const states = new Set(options.states ?? ["completed", "cancelled"]);
    let n = 0;
    for (const [id, s] of this.#messages) {
      if (states.has(s.state) && s.state !== "waiting" && s.state !== "active" && (s.finishedAt ?? 0) < options.before) {
        this.#messages.delete(id);
        n++;
      }
    }
    return n;
  }
}
