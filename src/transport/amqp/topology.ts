/**
 * The queues and exchanges behind each Ferry channel, and the delay buckets.
 *
 * Per channel `C` under prefix `P`:
 * - queue `P:C`: the channel's messages, due now (quorum by default);
 * - queue `P:C:dead`: its dead-letter store.
 * Shared by all channels of a prefix:
 * - delay bucket `k` (k = 0..31): fanout exchange and queue `P::delay:k`, whose
 *   `x-message-ttl` is 2^k ms and whose `x-dead-letter-exchange` is the default
 *   exchange. A delayed message is published to the bucket with the channel
 *   queue's name as routing key; when its TTL runs out it is dead-lettered to
 *   the default exchange, which routes it back to its channel queue by that key.
 *
 * Why power-of-two buckets: every message in one bucket has the same TTL, so the
 * queue expires them in order (no head-of-line blocking, which per-message TTL
 * has), 32 queues cover 1 ms to 24 days, and no plugin is needed. A message due
 * within the hold window (1 s or more, see amqp-publisher.ts) goes straight to its
 * channel queue and the consumer holds it in memory until due; a longer delay goes
 * to the shortest bucket that brings it back inside the window, never to one longer
 * than its remaining delay less a margin (how late hops have been coming back, at
 * least 40 ms), so it comes back early, never late; when it comes back still outside
 * the window, the consumer sends it to the next bucket (a "hop"). The consumer
 * compares `runAt` with its own clock before handing a message out, so no message is
 * delivered before its due time.
 *
 * Ferry's C = ':' separator cannot occur in a channel name, so names never clash.
 */
import type { Options } from "amqplib";
import { REPLY_CHANNEL_PREFIX } from "../../core/names.ts";

/** AMQP headers Ferry sets. */
export const HEADER = {
  /** Attempts used before this copy was published (absent: 0). */
  attempts: "x-ferry-attempts",
  /** Due time in ms since the epoch, when it differs from the body's `runAt`. */
  runAt: "x-ferry-run-at",
  /** The last error, as JSON, on a dead-lettered copy. */
  error: "x-ferry-error",
  /** On a copy sent through a delay bucket: when its TTL runs out (ms), to measure how late hops come back. */
  hopDue: "x-ferry-hop-due",
} as const;

/** The largest delay bucket: 2^31 ms, about 24.8 days. */
export const MAX_BUCKET = 31;

/** Queue of a channel. */
export function channelQueue(prefix: string, channel: string): string {
  return `${prefix}:${channel}`;
}

/** Dead-letter queue of a channel. */
export function deadQueue(prefix: string, channel: string): string {
  return `${prefix}:${channel}:dead`;
}

/** Exchange and queue of delay bucket `k`. */
export function bucketName(prefix: string, k: number): string {
  return `${prefix}::delay:${k}`;
}

/** The bucket for a remaining delay: the largest 2^k ms not longer than it. */
export function bucketFor(remainingMs: number): number {
  if (remainingMs < 2) return 0;
  return Math.min(MAX_BUCKET, Math.floor(Math.log2(remainingMs)));
}

/**
 * How long a reply inbox's queues (channel `_reply.<random>`, one per requesting process)
 * outlive their last use: RabbitMQ deletes a queue with no consumer that nobody declared or
 * read for this long, so the inboxes of exited processes do not pile up.
 */
export const REPLY_QUEUE_EXPIRES_MS = 3_600_000;

/** Arguments of a channel queue or dead-letter queue (a reply inbox's expire when unused). */
export function queueArguments(queueType: "quorum" | "classic", channel = ""): Options.AssertQueue {
  const expires = channel.startsWith(REPLY_CHANNEL_PREFIX) ? { "x-expires": REPLY_QUEUE_EXPIRES_MS } : {};
  if (queueType === "quorum") return { durable: true, arguments: { "x-queue-type": "quorum", ...expires } };
  return { durable: true, arguments: { "x-queue-type": "classic", "x-max-priority": 10, ...expires } };
}

/** Arguments of delay bucket `k`. */
export function bucketArguments(queueType: "quorum" | "classic", k: number): Options.AssertQueue {
  const common = { "x-message-ttl": 2 ** k, "x-dead-letter-exchange": "" };
  if (queueType === "quorum") {
    // at-least-once dead-lettering: a message leaves the bucket only once its channel queue has it.
    return { durable: true, arguments: { ...common, "x-queue-type": "quorum", "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish" } };
  }
  return { durable: true, arguments: { ...common, "x-queue-type": "classic" } };
}

/**
 * AMQP priority (1-9, classic queues only) for a Ferry priority (-1000..1000):
 * 5 for 0; 6, 7, 8, 9 for 1-9, 10-99, 100-999, 1000; 4, 3, 2, 1 for the negatives
 * likewise. Ferry priorities in one decade share a level (FIFO among them).
 */
export function amqpPriority(priority: number): number {
  if (priority === 0) return 5;
  const step = Math.min(4, Math.floor(Math.log10(Math.abs(priority))));
  return priority > 0 ? 6 + step : 4 - step;
}
