/**
 * Request/reply over any transport. A requester owns an inbox: a private
 * channel (`_reply.<random>`) on the transport of the task's channel. A worker
 * that finishes a message carrying `replyTo` sends a reply message there; the
 * inbox matches it to the waiting caller by the request's message id.
 */
import { randomBytes } from "node:crypto";
import { createEnvelope, type Envelope } from "../core/envelope.ts";
import { FerryError, toError } from "../core/errors.ts";
import { REPLY_CHANNEL_PREFIX } from "../core/names.ts";
import type { Transport } from "../transport/types.ts";

/** The task name of reply messages. */
export const REPLY_TASK = "ferry.reply";

/** The payload of a reply message. */
export interface ReplyPayload {
  /** The id of the request message. */
  requestId: string;
  status: "completed" | "cancelled" | "dead";
  result?: unknown;
  error?: { code: string; message: string };
}

/** Make the reply message a worker sends for a finished request. */
export function replyEnvelope(replyTo: string, payload: ReplyPayload, correlationId: string | undefined, now = Date.now()): Envelope<ReplyPayload> {
  return createEnvelope({ name: REPLY_TASK, channel: replyTo, payload, maxAttempts: 1, headers: correlationId ? { correlationId, causationId: payload.requestId } : { causationId: payload.requestId } }, now);
}

interface Pending {
  resolve: (reply: ReplyPayload) => void;
  reject: (err: Error) => void;
}

/** One process's inbox on one transport. */
export class ReplyInbox {
  readonly channel: string;
  readonly transport: Transport;
  #pending = new Map<string, Pending>();
  #stop = new AbortController();
  #loop: Promise<void> | undefined;
  #late = 0;
  #closed = false;

  constructor(transport: Transport) {
    this.transport = transport;
    this.channel = `${REPLY_CHANNEL_PREFIX}${randomBytes(8).toString("hex")}`;
  }

  /** Replies that arrived after their caller stopped waiting (dropped). */
  get lateReplies(): number {
    return this.#late;
  }

  /** Callers waiting now. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Wait for the reply to `requestId`. Register before sending the request so
   * a fast reply is never missed.
   */
  wait(requestId: string, timeoutMs: number, signal?: AbortSignal): { promise: Promise<ReplyPayload>; cancel: () => void } {
    if (this.#closed) throw new FerryError("TRANSPORT_CLOSED", "this Ferry is closed");
    let cancel = () => undefined as void;
    const promise = new Promise<ReplyPayload>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#pending.delete(requestId);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new FerryError("REQUEST_TIMEOUT", `no reply to request ${requestId} within ${timeoutMs} ms; the task may still run, and its result can be fetched by id`, { details: { id: requestId } }));
      }, timeoutMs);
      const onAbort = () => {
        cleanup();
        reject(new FerryError("ABORTED", `request ${requestId} was aborted`, { cause: signal?.reason, details: { id: requestId } }));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#pending.set(requestId, {
        resolve: (r) => {
          cleanup();
          resolve(r);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      });
      cancel = () => cleanup();
    });
    this.#loop ??= this.#run();
    return { promise, cancel };
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stop.signal.aborted) {
      try {
        const got = await this.transport.receive({ channels: [this.channel], max: 500, leaseMs: 30_000, waitMs: 5000, signal: this.#stop.signal });
        failures = 0;
        if (got.length === 0) continue;
        for (const d of got) {
          const reply = d.message.payload as ReplyPayload;
          const waiter = this.#pending.get(reply?.requestId);
          if (waiter) waiter.resolve(reply);
          else this.#late++;
        }
        await this.transport.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
      } catch (err) {
        if (this.#stop.signal.aborted) break;
        failures++;
        process.emitWarning(`ferry: reply inbox receive failed (${toError(err).message}); retrying`, { code: "FERRY_TRANSPORT_UNAVAILABLE" });
        await new Promise((r) => setTimeout(r, Math.min(5000, 50 * 2 ** failures)));
      }
    }
  }

  /** Stop the inbox; waiting callers are rejected with `ABORTED`. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stop.abort();
    for (const [id, p] of this.#pending) p.reject(new FerryError("ABORTED", `request ${id} was abandoned: the Ferry closed`, { details: { id } }));
    this.#pending.clear();
    await this.#loop;
  }
}
