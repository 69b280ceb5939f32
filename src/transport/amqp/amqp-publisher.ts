/**
 * Publishing for the RabbitMQ transport: declaring the queues of a channel and
 * the delay buckets (once per connection generation), choosing the bucket of a
 * copy that is not due yet, and publishing batches with publisher confirms.
 */
import type { Channel, Options } from "amqplib";
import type { Envelope } from "../../core/envelope.ts";
import { FerryError } from "../../core/errors.ts";
import { corked, type Link } from "./amqp-connection.ts";
import type { ResolvedAmqpOptions } from "./amqp-options.ts";
import { amqpPriority, bucketArguments, bucketFor, bucketName, channelQueue, deadQueue, HEADER, queueArguments } from "./topology.ts";

/**
 * A copy due within this many ms (or twice the hop margin, if more) is always
 * held in the consumer's memory until due: a bucket hop costs more than that.
 */
export const HOLD_MS = 100;

/**
 * The hold window: a copy due within this many ms (or twice the hop margin, if
 * more) is published straight to its channel queue, and the consumer holds it
 * in memory until due, as long as it holds fewer than half its largest prefetch
 * (beyond that it sends the copy to a bucket, as below). A longer delay goes to
 * the bucket that brings it back inside this window as early as the window
 * allows, so that a hop would have to come back most of a window late to make
 * the copy late; only delays beyond window + 2^k need more than one hop.
 */
export const HOLD_WINDOW_MS = 1000;

/**
 * The least margin: a copy never goes to a bucket longer than its remaining
 * delay less the margin, so that a hop which comes back a little late (broker
 * expiry, dead-lettering, a busy event loop) still arrives before the due time
 * and the last stretch is waited out in memory, on a timer, instead of late. The
 * margin follows how late hops have been coming back (the worst recent lag,
 * decaying by half every {@link LAG_HALF_LIFE_MS}, times 1.5), between this and
 * {@link MAX_HOP_MARGIN_MS}.
 */
export const HOP_MARGIN_MS = 40;
/** The largest hop margin. */
export const MAX_HOP_MARGIN_MS = 2000;
/** Half-life of the remembered hop lag. */
export const LAG_HALF_LIFE_MS = 10_000;

/** Declares topology and publishes, for one transport. */
export class Publisher {
  /** Names of every queue and exchange declared (for clean-up tooling). */
  readonly declaredEver = new Set<string>();
  readonly #options: ResolvedAmqpOptions;
  #declared = new Map<string, Promise<void>>();
  #ready = new Set<string>();
  #lag = 0;
  #lagAt = 0;

  constructor(options: ResolvedAmqpOptions) {
    this.#options = options;
  }

  /** Forget what was declared (after a connection loss, declare again on the new one). */
  reset(): void {
    this.#declared.clear();
    this.#ready.clear();
  }

  #declare(link: Link, name: string, make: (ch: Channel) => Promise<unknown>): Promise<void> {
    const key = `${link.generation}|${name}`;
    let p = this.#declared.get(key);
    if (!p) {
      this.declaredEver.add(name);
      p = (async () => {
        const ch = await link.model.createChannel();
        ch.on("error", () => {});
        try {
          await make(ch);
        } catch (err) {
          this.#declared.delete(key);
          throw new FerryError("CONFIG_INVALID", `RabbitMQ refused to declare ${JSON.stringify(name)}: ${(err as Error).message}; an existing queue with other arguments (e.g. classic vs quorum) must be deleted or use another ?prefix=`, { cause: err });
        }
        await ch.close().catch(() => {});
        this.#ready.add(key);
      })();
      this.#declared.set(key, p);
    }
    return p;
  }

  /** Declare a channel's queue and dead-letter queue. */
  ensureChannel(link: Link, channel: string): Promise<void> {
    const { prefix, queueType } = this.#options;
    const args = queueArguments(queueType, channel);
    return this.#declare(link, channelQueue(prefix, channel), async (ch) => {
      await ch.assertQueue(channelQueue(prefix, channel), args);
      await ch.assertQueue(deadQueue(prefix, channel), args);
      this.declaredEver.add(deadQueue(prefix, channel));
    });
  }

  /** Declare the queues of many channels. */
  ensureChannels(link: Link, channels: Iterable<string>): Promise<void[]> {
    return Promise.all([...new Set(channels)].map((c) => this.ensureChannel(link, c)));
  }

  #ensureBucket(link: Link, k: number): Promise<void> {
    const name = bucketName(this.#options.prefix, k);
    return this.#declare(link, name, async (ch) => {
      await ch.assertExchange(name, "fanout", { durable: true });
      await ch.assertQueue(name, bucketArguments(this.#options.queueType, k));
      await ch.bindQueue(name, name, "");
    });
  }

  /** Note how late (ms) a copy came back from its delay bucket. */
  observeHopLag(lag: number, now: number): void {
    const decayed = this.#lag * 0.5 ** ((now - this.#lagAt) / LAG_HALF_LIFE_MS);
    this.#lag = Math.max(lag, decayed);
    this.#lagAt = now;
  }

  /** The current hop margin (ms). */
  margin(now: number): number {
    const lag = this.#lag * 0.5 ** ((now - this.#lagAt) / LAG_HALF_LIFE_MS);
    return Math.min(MAX_HOP_MARGIN_MS, Math.max(HOP_MARGIN_MS, Math.ceil(lag * 1.5)));
  }

  /** True when a copy due at `runAt` is so close that it is always waited out in memory. */
  holds(runAt: number, now: number): boolean {
    return runAt - now <= Math.max(HOLD_MS, 2 * this.margin(now));
  }

  /** True when a copy due at `runAt` is inside the hold window: a consumer with room holds it in memory. */
  inWindow(runAt: number, now: number): boolean {
    return runAt - now <= Math.max(HOLD_WINDOW_MS, 2 * this.margin(now));
  }

  /**
   * Where to publish a copy due at `runAt`: undefined (straight to its queue) inside
   * the hold window, else the shortest bucket that brings it back inside the window,
   * if one is not longer than the remaining delay less the margin, else the largest
   * bucket that is (the copy then hops again when it comes back).
   */
  route(runAt: number, now: number): number | undefined {
    if (this.inWindow(runAt, now)) return undefined;
    const remaining = runAt - now;
    const margin = this.margin(now);
    const window = Math.max(HOLD_WINDOW_MS, 2 * margin);
    const longest = bucketFor(remaining - margin);
    const landing = Math.ceil(Math.log2(remaining - window));
    return Math.min(longest, Math.max(0, landing));
  }

  /**
   * Where a consumer sends a copy that it does not hold: as {@link Publisher.route},
   * except inside the hold window (its holds are full): undefined when the copy is
   * due too soon for a hop, else the largest bucket not longer than the remaining
   * delay less the margin.
   */
  hopRoute(runAt: number, now: number): number | undefined {
    if (!this.inWindow(runAt, now)) return this.route(runAt, now);
    return this.holds(runAt, now) ? undefined : bucketFor(runAt - now - this.margin(now));
  }

  /**
   * Declare the buckets that copies due at `runAts` go through, and return the
   * time to route them by: declaring a bucket takes round trips, during which
   * the remaining delays shrink, so the route is chosen again after each wait
   * until every bucket it needs is ready. Publish right after, without awaiting
   * anything between, with the same `route` (default {@link Publisher.route}).
   */
  async buckets(link: Link, runAts: readonly number[], route: (runAt: number, now: number) => number | undefined = (at, now) => this.route(at, now)): Promise<number> {
    for (;;) {
      const now = Date.now();
      const missing = new Set<number>();
      for (const at of runAts) {
        const k = route(at, now);
        if (k !== undefined && !this.#ready.has(`${link.generation}|${bucketName(this.#options.prefix, k)}`)) missing.add(k);
      }
      if (missing.size === 0) return now;
      await Promise.all([...missing].map((k) => this.#ensureBucket(link, k)));
    }
  }

  /** Publish one copy (to its channel queue, or to delay bucket `bucket`). */
  publish(link: Link, content: Buffer, e: Envelope, runAt: number, attempts: number, bucket: number | undefined, done: (err: unknown) => void): void {
    const props: Options.Publish = { persistent: true };
    // the body carries runAt and attempt as sent; headers only when a copy differs from it
    if (runAt !== e.runAt || attempts !== e.attempt) props.headers = attempts > 0 ? { [HEADER.runAt]: runAt, [HEADER.attempts]: attempts } : { [HEADER.runAt]: runAt };
    if (bucket !== undefined) (props.headers ??= {})[HEADER.hopDue] = Date.now() + 2 ** bucket;
    if (this.#options.queueType === "classic") props.priority = amqpPriority(e.priority);
    const queue = channelQueue(this.#options.prefix, e.channel);
    if (bucket === undefined) link.publish.publish("", queue, content, props, done);
    else link.publish.publish(bucketName(this.#options.prefix, bucket), queue, content, props, done);
  }

  /**
   * Publish a batch with confirms on `link`: `each` publishes with the callback it
   * is given; resolves when all are confirmed. A batch of more than one is written
   * with the socket corked, in one write.
   */
  confirmed(link: Link, count: number, each: (done: (err: unknown) => void) => void): Promise<void> {
    if (count === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let left = count;
      let failed = false;
      const done = (err: unknown) => {
        if (failed) return;
        if (err) {
          failed = true;
          reject(err instanceof Error ? err : new Error(String(err ?? "nacked")));
        } else if (--left === 0) resolve();
      };
      try {
        if (count > 1) corked(link, () => each(done));
        else each(done);
      } catch (err) {
        done(err ?? new Error("publish failed"));
      }
    });
  }
}
