/**
 * The outbox relay: forwards messages committed to channels of a PostgreSQL
 * transport (typically with `sendWithin`, inside the application's own
 * transaction) to another transport, e.g. Redis, as they commit.
 *
 * At least once: the relay leases a batch, sends it to the target, and only then
 * acks it. A crash between the two re-sends the batch after the lease ends; the
 * message id is preserved, so the target stores it once (every transport treats
 * a re-sent id as a duplicate while it keeps the message).
 */
import type { Envelope } from "../../core/envelope.ts";
import { FerryError, toError } from "../../core/errors.ts";
import { assertChannel } from "../../core/names.ts";
import type { Delivery, Transport } from "../types.ts";
import type { PostgresTransport } from "./postgres-transport.ts";

/** Options of {@link OutboxRelay}. */
export interface OutboxRelayOptions {
  /** Where messages are committed (the outbox). */
  source: PostgresTransport;
  /** The outbox channels to forward. */
  channels: readonly string[];
  /** Where they go. */
  target: Transport;
  /** The target channel of a message. Default: the same channel name. */
  mapChannel?: (channel: string) => string;
  /** Messages per round trip. Default `100`. */
  batchSize?: number;
  /** Lease on outbox rows while forwarding; a crashed relay's batch is re-sent after it. Default `30000` ms. */
  leaseMs?: number;
  /** How long an idle receive waits for a NOTIFY before asking again. Default `5000` ms. */
  waitMs?: number;
  /** Pause after a failure before trying again (doubles up to 30 s). Default `500` ms. */
  retryDelayMs?: number;
  /** Told about every failure (the relay keeps going). Default: `process.emitWarning`. */
  onError?: (error: Error) => void;
}

/** Forwards committed outbox messages to another transport, at least once. */
export class OutboxRelay {
  readonly #o: Required<Omit<OutboxRelayOptions, "mapChannel">> & { mapChannel?: (channel: string) => string };
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #relayed = 0;

  /** @throws FerryError `INVALID_NAME`, `INVALID_OPTION` */
  constructor(options: OutboxRelayOptions) {
    if (options.channels.length === 0) throw new FerryError("INVALID_OPTION", "the outbox relay needs at least one channel", { details: { option: "channels" } });
    for (const c of options.channels) assertChannel(c);
    const batchSize = options.batchSize ?? 100;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
      throw new FerryError("INVALID_OPTION", `batchSize must be a whole number from 1 to 10000, got ${String(options.batchSize)}`, { details: { option: "batchSize" } });
    }
    this.#o = {
      source: options.source,
      channels: [...options.channels],
      target: options.target,
      batchSize,
      leaseMs: options.leaseMs ?? 30_000,
      waitMs: options.waitMs ?? 5_000,
      retryDelayMs: options.retryDelayMs ?? 500,
      onError: options.onError ?? ((e) => process.emitWarning(e.message, { code: "FERRY_OUTBOX_RELAY" })),
    };
    if (options.mapChannel) this.#o.mapChannel = options.mapChannel;
  }

  /** Messages forwarded (and acked) so far. */
  get relayed(): number {
    return this.#relayed;
  }

  /** True while the relay loop runs. */
  get running(): boolean {
    return this.#loop !== undefined;
  }

  /**
   * Forward one batch of due messages, waiting up to `waitMs` for one to commit.
   * Returns how many were forwarded. Failures are thrown; the batch's lease then
   * ends and it is forwarded again.
   */
  async relayOnce(waitMs = 0, signal?: AbortSignal): Promise<number> {
    const request = { channels: this.#o.channels, max: this.#o.batchSize, leaseMs: this.#o.leaseMs, waitMs };
    const got = await this.#o.source.receive(signal ? { ...request, signal } : request);
    if (got.length === 0) return 0;
    return this.#forward(got);
  }

  async #forward(got: Delivery[]): Promise<number> {
    const map = this.#o.mapChannel;
    const out: Envelope[] = got.map((d) => ({ ...d.message, attempt: 0, channel: map ? map(d.message.channel) : d.message.channel }));
    try {
      await this.#o.target.send(out);
    } catch (err) {
      // Hand the batch back at once (no attempt used) so the next try does not wait for the lease.
      await this.#o.source.retry(got.map((d) => ({ id: d.message.id, token: d.token, runAt: d.message.runAt, attemptUsed: false }))).catch(() => {});
      throw err;
    }
    const acked = await this.#o.source.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
    const n = acked.filter(Boolean).length;
    this.#relayed += n;
    return n;
  }

  /** Start forwarding in the background until {@link stop}. Idempotent. */
  start(): void {
    if (this.#loop) return;
    const abort = (this.#abort = new AbortController());
    this.#loop = this.#run(abort.signal).finally(() => {
      this.#loop = undefined;
    });
  }

  async #run(signal: AbortSignal): Promise<void> {
    let delay = this.#o.retryDelayMs;
    while (!signal.aborted) {
      try {
        await this.relayOnce(this.#o.waitMs, signal);
        delay = this.#o.retryDelayMs;
      } catch (err) {
        if (signal.aborted) return;
        this.#o.onError(toError(err));
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            signal.removeEventListener("abort", done);
            resolve();
          };
          const timer = setTimeout(done, delay);
          signal.addEventListener("abort", done, { once: true });
        });
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  /** Stop after the batch in flight (if any) is forwarded. Idempotent. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    await this.#loop;
  }
}
