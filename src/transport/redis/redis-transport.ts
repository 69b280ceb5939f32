/**
 * The Redis transport: a fast shared queue. Every state change is one Lua
 * script per batch (atomic, one round trip for K messages); due times and
 * leases use the Redis server's clock; delayed messages are data in Redis, not
 * timers; idle receivers block on wake-up lists instead of polling; expired
 * leases are taken back by the next receive of their channel, so no separate
 * rescuer is needed. Key layout and script contracts: `lua/lib.lua` and the
 * header of each `lua/*.lua`.
 */
import { Redis } from "ioredis";
import { systemClock, type Clock } from "../../core/clock.ts";
import { checkEnvelopeKeys, isMessageId, type Envelope } from "../../core/envelope.ts";
import { FerryError, isFerryError } from "../../core/errors.ts";
import { assertChannel } from "../../core/names.ts";
import { redactUrl } from "../registry.ts";
import {
  MESSAGE_STATES,
  type AckItem,
  type ChannelCounts,
  type DeadItem,
  type DeadLetterAdmin,
  type Delivery,
  type Inspectable,
  type LeaseRef,
  type ListQuery,
  type MessageRecord,
  type MessageState,
  type Pausable,
  type Prunable,
  type ReceiveRequest,
  type RetryItem,
  type SendReceipt,
  type Transport,
} from "../types.ts";
import { ConnectionMonitor, readServerSettings, serverWarnings } from "./redis-health.ts";
import { resolveRetention, type ResolvedRule } from "../retention.ts";
import { ReadAhead, type Leased } from "../read-ahead.ts";
import { Retainer, RETAIN_BATCH_SYNC } from "../retainer.ts";
import { checkPrefix, optionsFromUrl, type RedisTransportOptions, type WarningHandler } from "./redis-options.ts";
import { listRecords, parseCounts, readRecords } from "./redis-inspect.ts";
import { parseDeliveries } from "./redis-records.ts";
import { runScript, type ScriptName } from "./redis-scripts.ts";
import { BlockingWaiter } from "./redis-waiter.ts";

export type { RedisTransportOptions, RetentionOptions, RetentionRule, WarningHandler } from "./redis-options.ts";

/** The default server: `redis://127.0.0.1:6379/0`. */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0";
/**
 * Messages per send script call: larger sends are pipelined in chunks of this many. 250 beat
 * 1,000 and 2,000 (Redis starts sooner and the last chunk is short) and matched 100, in a warm
 * process interleaved with bee-queue.
 */
const DEFAULT_SEND_CHUNK = 250;
/** Most delayed messages or expired leases one receive moves back to ready, per channel. */
const RECOVER_CAP = 1000;
/** Channels per `retain` script call. */
const SWEEP_CHANNELS = 100;
/** A wait for a due time at most this long (ms) sleeps locally instead of blocking in Redis. */
const SHORT_WAIT_MS = 2;
/** Pause after a blocking wait that failed, before the next receive script. */
const WAIT_RETRY_MS = 100;
const FINISHED: readonly MessageState[] = ["completed", "cancelled", "dead"];
const BAND = 2 ** 42;

/** A ready message's score: priority first (higher first), then due time; exact in a double. Must agree with `rescore` in lua/lib.lua. */
function readyScore(priority: number, runAt: number): string {
  const r = Math.min(Math.max(Math.floor(runAt), 0), BAND - 1);
  return String((1000 - priority) * BAND + r);
}

/** Sent without a delay (its runAt not after its createdAt): due on arrival, whatever the server's clock says. */
function dueOnArrival(m: Envelope): boolean {
  return m.runAt <= m.createdAt;
}

/** Check what a message's keys and scores use (the rest was checked where it was made) and encode it. */
function encode(m: Envelope): string {
  checkEnvelopeKeys(m);
  return encodeJson(m);
}

/** A message's JSON. @throws FerryError `INVALID_MESSAGE` when it has none (a BigInt, a cycle). */
function encodeJson(m: Envelope): string {
  try {
    return JSON.stringify(m);
  } catch (err) {
    throw new FerryError("INVALID_MESSAGE", `message ${m.id} cannot be encoded as JSON: ${(err as Error).message}`, { cause: err, details: { id: m.id } });
  }
}

/**
 * The send script's ARGV for messages [start, end) (see lua/send.lua): the prefix, then
 * each message's id and JSON, after a header (channel, runAt, score, dedupKey) written
 * only when it differs from the previous message's.
 */
function sendArgs(head: string, messages: readonly Envelope[], json: readonly string[], start: number, end: number): string[] {
  const args: string[] = [head];
  let ch = "";
  let runAt = NaN;
  let priority = NaN;
  let dk: string | null | undefined;
  let undelayed = false;
  for (let i = start; i < end; i++) {
    const m = messages[i]!;
    // "!": due on arrival, so the script reads no TIME.
    const onArrival = dueOnArrival(m);
    if (m.channel !== ch || m.runAt !== runAt || m.priority !== priority || m.dedupKey !== dk || onArrival !== undelayed) {
      ch = m.channel;
      runAt = m.runAt;
      priority = m.priority;
      dk = m.dedupKey;
      undelayed = onArrival;
      args.push(onArrival ? "!" : "|", ch, String(runAt), readyScore(priority, runAt), dk ?? "");
    }
    args.push(m.id, json[i]!);
  }
  return args;
}

/** Fill receipts [start, end) from a send reply: stored unless the reply names it (index, holder id). Returns `receipts`. */
function applyReply(receipts: SendReceipt[], messages: readonly Envelope[], start: number, end: number, reply: unknown[]): SendReceipt[] {
  for (let i = start; i < end; i++) receipts[i] = { id: messages[i]!.id, deduplicated: false };
  for (let j = 0; j < reply.length; j += 2) receipts[start + Number(reply[j]) - 1] = { id: reply[j + 1] as string, deduplicated: true };
  return receipts;
}


/** A Redis-backed transport with the full capability set. */
export class RedisTransport implements Transport, Inspectable, DeadLetterAdmin, Prunable, Pausable {
  readonly kind = "redis";
  /** The key prefix. */
  readonly prefix: string;
  /** `host:port` of the server, for messages. */
  readonly target: string;
  readonly #client: Redis;
  readonly #waiter: BlockingWaiter;
  readonly #monitor: ConnectionMonitor;
  readonly #warn: WarningHandler;
  readonly #completed: ResolvedRule;
  readonly #dead: ResolvedRule;
  readonly #sendChunk: number;
  readonly #clock: Clock | undefined;
  readonly #ahead: ReadAhead;
  /** The last receive script that leased nothing, per set of channels: its `now` and `nextDue`. */
  readonly #idle = new Map<string, unknown[]>();
  /** Orders what one transport leased, for read-ahead (Redis itself orders by score, then id). */
  #leaseSeq = 0;
  #closing: Promise<void> | undefined;
  /** The background sweep of channels no ack trims (acks trim their own, so none notes finishing). */
  readonly #retainer: Retainer;
  #closed = false;

  private constructor(client: Redis, options: RedisTransportOptions) {
    this.#client = client;
    this.prefix = checkPrefix(options.prefix ?? "ferry");
    this.target = `${client.options.host ?? "127.0.0.1"}:${client.options.port ?? 6379}`;
    this.#warn = options.onWarning ?? ((message) => console.warn(message));
    ({ completed: this.#completed, dead: this.#dead } = resolveRetention(options.retention));
    this.#sendChunk = options.sendChunk ?? DEFAULT_SEND_CHUNK;
    this.#clock = options.clock;
    if (!Number.isInteger(this.#sendChunk) || this.#sendChunk < 1) throw new FerryError("INVALID_OPTION", "sendChunk must be a whole number >= 1", { details: { option: "sendChunk" } });
    this.#monitor = new ConnectionMonitor(client, this.target, this.#warn, "command connection");
    this.#waiter = new BlockingWaiter(client, this.prefix, this.target, this.#warn);
    this.#ahead = new ReadAhead({ lease: (channels, max, leaseMs) => this.#lease(channels, max, leaseMs), release: (items) => this.#release(items) });
    this.#retainer = new Retainer({ completed: this.#completed, dead: this.#dead }, (state, rule, cap) => this.#sweep(state, rule, cap), RETAIN_BATCH_SYNC);
  }

  /**
   * Apply the retention rules to every channel now, as the background does once a minute:
   * the ack and dead-letter scripts trim the channels they touch, and this sweep covers the
   * others (a channel nobody sends to any more, the reply inbox of a process that exited),
   * so their records still go when they pass the age limit. Channels left with nothing at
   * all (not ready, delayed, active, kept or paused) are forgotten until the next send.
   * Returns records deleted. For tests and maintenance scripts; nothing needs to call it.
   */
  enforceRetention(): Promise<number> {
    this.#checkOpen();
    return this.#retainer.run();
  }

  /** One state's rule over every channel, `SWEEP_CHANNELS` per script call, at most `cap` records per channel. */
  async #sweep(state: MessageState, rule: ResolvedRule, cap: number): Promise<number> {
    let deleted = 0;
    let cursor = "0";
    do {
      const [next, channels] = await this.#client.sscan(`${this.prefix}:channels`, cursor, "COUNT", SWEEP_CHANNELS);
      cursor = next;
      if (channels.length > 0) deleted += Number(await this.#run("retain", [this.prefix, state, rule.count, rule.ageMs, cap, ...channels]));
    } while (cursor !== "0" && !this.#closed);
    return deleted;
  }

  /**
   * Connect, check the server's settings (warning when messages are at risk) and
   * return the transport.
   * @throws FerryError `INVALID_OPTION`, `INVALID_URL`, `TRANSPORT_UNAVAILABLE`
   */
  static async open(options: RedisTransportOptions = {}): Promise<RedisTransport> {
    const url = String(options.url ?? DEFAULT_REDIS_URL);
    let client: Redis;
    try {
      client = new Redis(url, { lazyConnect: true, ...options.redis });
    } catch (err) {
      throw new FerryError("INVALID_URL", `cannot use redis URL ${JSON.stringify(redactUrl(url))}: ${(err as Error).message}`, { cause: err });
    }
    let transport: RedisTransport;
    try {
      transport = new RedisTransport(client, options);
    } catch (err) {
      client.disconnect();
      throw err;
    }
    let firstError: Error | undefined;
    const onError = (err: Error) => (firstError ??= err);
    client.on("error", onError);
    try {
      await client.connect();
    } catch (err) {
      await transport.close();
      const cause = firstError ?? (err as Error);
      throw new FerryError("TRANSPORT_UNAVAILABLE", `cannot connect to Redis at ${redactUrl(url)}: ${cause.message}; is the server running and the URL right?`, { cause });
    } finally {
      client.off("error", onError);
    }
    if (options.checkServer !== false) {
      for (const warning of serverWarnings(await readServerSettings(client), transport.target)) transport.#warn(warning);
    }
    return transport;
  }

  /**
   * Open from a transport URL: `redis://[:password@]host:port/db?prefix=ferry`
   * (`rediss://` for TLS). The registry calls this.
   */
  static fromUrl(url: URL): Promise<RedisTransport> {
    return RedisTransport.open(optionsFromUrl(url));
  }

  #checkOpen(): void {
    if (this.#closed) throw new FerryError("TRANSPORT_CLOSED", `the redis transport (${this.target}, prefix "${this.prefix}") is closed; open a new one to continue`);
  }

  /** The scripts' first argument: the prefix, with the test clock's now when there is one. */
  #head(): string {
    return this.#clock ? `${this.prefix}@${Math.floor(this.#clock.now())}` : this.prefix;
  }

  async #run(name: ScriptName, args: (string | number)[]): Promise<unknown[]> {
    if (this.#clock) args[0] = this.#head();
    try {
      return (await runScript(this.#client, name, args)) as unknown[];
    } catch (err) {
      throw this.#wrap(err, name);
    }
  }

  #wrap(err: unknown, what: string): Error {
    if (isFerryError(err)) return err;
    if (this.#closed) return new FerryError("TRANSPORT_CLOSED", `the redis transport closed during ${what}`, { cause: err });
    return new FerryError("TRANSPORT_UNAVAILABLE", `redis ${what} failed at ${this.target}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }

  async send(messages: readonly Envelope[]): Promise<SendReceipt[]> {
    this.#checkOpen();
    const count = messages.length;
    if (count === 0) return [];
    const first = messages[0]!;
    // One message sent without a delay or a dedupKey (a single dispatch): a script of its own.
    if (count === 1 && dueOnArrival(first) && (first.dedupKey ?? "") === "") {
      const json = encode(first);
      const reply = await this.#run("send-one", [this.#head(), first.channel, readyScore(first.priority, first.runAt), first.id, json]);
      return [reply.length === 0 ? { id: first.id, deduplicated: false } : { id: reply[1] as string, deduplicated: true }];
    }
    const chunk = this.#sendChunk;
    const json: string[] = new Array(count);
    if (count <= chunk) {
      // Every message is checked and encoded before anything is written, so a bad one stores nothing.
      for (let i = 0; i < count; i++) json[i] = encode(messages[i]!);
      return applyReply(new Array(count), messages, 0, count, await this.#run("send", sendArgs(this.#head(), messages, json, 0, count)));
    }
    // Larger sends: one script call per chunk, each written as soon as it is encoded, so Redis
    // stores one chunk while the next is being encoded. Each chunk is atomic, the send is not:
    // keys (id, channel, runAt, priority, dedupKey) are checked for every message first, but a
    // message that cannot be encoded as JSON is found only when its chunk is, after the chunks
    // before it were sent. A failure rejects the send with details.stored; re-sending the same
    // envelopes is safe (a stored id comes back as a duplicate).
    for (let i = 0; i < count; i++) checkEnvelopeKeys(messages[i]!);
    const receipts: SendReceipt[] = new Array(count);
    const calls: Promise<unknown>[] = [];
    let failure: unknown;
    for (let start = 0; start < count && failure === undefined; start += chunk) {
      const end = Math.min(count, start + chunk);
      try {
        for (let i = start; i < end; i++) json[i] = encodeJson(messages[i]!);
      } catch (err) {
        failure = err;
        break;
      }
      calls.push(runScript(this.#client, "send", sendArgs(this.#head(), messages, json, start, end)).then((reply) => applyReply(receipts, messages, start, end, reply as unknown[])));
    }
    const settled = await Promise.allSettled(calls);
    const failed = settled.findIndex((r) => r.status === "rejected");
    if (failure === undefined && failed < 0) return receipts;
    const err = failure !== undefined ? (failure as FerryError) : this.#wrap((settled[failed] as PromiseRejectedResult).reason, "send");
    const stored = settled.reduce((n, r, k) => (r.status === "fulfilled" ? n + Math.min(chunk, count - k * chunk) : n), 0);
    if (err instanceof FerryError && err.details?.stored === undefined) {
      throw new FerryError(err.code, `${err.message} (${stored} of ${count} messages were stored, in other chunks of ${chunk}; re-sending the same messages stores only the rest)`, { cause: err.cause ?? err, details: { ...err.details, stored, count } });
    }
    throw err;
  }

  /**
   * Lease due messages, waiting up to `waitMs` for some. A consumer loop (a receive that
   * waits and carries an abort signal, as the worker's fetch loop does) reads ahead: once
   * a receive finds a backlog, each script call leases more than was asked for and the
   * rest wait here, leased, for the loop's next receive (see `../read-ahead.ts`), so a
   * fast consumer pays one round trip per batch, not per receive.
   */
  async receive(request: ReceiveRequest): Promise<Delivery[]> {
    this.#checkOpen();
    const { channels, max, leaseMs, waitMs, signal } = request;
    if (!Number.isInteger(max) || max < 0) throw new FerryError("INVALID_OPTION", `receive max must be a whole number >= 0, got ${String(max)}`, { details: { option: "max" } });
    if (!Number.isFinite(leaseMs) || leaseMs < 1) throw new FerryError("INVALID_OPTION", `receive leaseMs must be >= 1, got ${String(leaseMs)}`, { details: { option: "leaseMs" } });
    if (max === 0 || channels.length === 0) return [];
    for (const ch of channels) assertChannel(ch);
    const unique = channels.length === 1 ? channels : [...new Set(channels)];
    const lease = Math.round(leaseMs);
    // Read-ahead times held leases by the real clock: not under a test clock.
    const loop = !this.#clock && ReadAhead.applies(request) ? signal! : undefined;
    if (loop) {
      const held = await this.#ahead.take(unique, max, lease, loop);
      if (held.length > 0) return held;
    }
    const args: (string | number)[] = [this.prefix, max, lease, RECOVER_CAP, ...unique];
    const elapsed = this.#clock ? ((start) => () => this.#clock!.now() - start)(this.#clock.now()) : ((start) => () => performance.now() - start)(performance.now());
    // The reply of a receive script run by the waiter right after its wake-up, if any.
    let pending: unknown[] | undefined;
    for (;;) {
      if (this.#closed) return [];
      let reply: unknown[];
      if (pending) {
        reply = pending;
        pending = undefined;
        if (reply.length > 3) return parseDeliveries(reply, lease);
      } else if (loop) {
        let got: Delivery[];
        try {
          got = await this.#ahead.lease(unique, max, lease, loop);
        } catch (err) {
          if (this.#closed) return [];
          throw err;
        }
        if (got.length > 0) return got;
        reply = this.#idle.get(unique.join("\u0000")) ?? [0, -1];
      } else {
        try {
          reply = await this.#run("receive", args);
        } catch (err) {
          if (this.#closed) return [];
          throw err;
        }
        if (reply.length > 3) return parseDeliveries(reply, lease);
      }
      if (!(waitMs > 0) || signal?.aborted || this.#closed) return [];
      const remaining = waitMs - elapsed();
      if (remaining <= 0) return [];
      const now = Number(reply[0]);
      const nextDue = Number(reply[1]);
      const timed = nextDue >= 0 && nextDue - now < remaining;
      const ms = timed ? Math.max(0, nextDue - now) : remaining;
      if (ms <= 0) continue;
      if (this.#clock) {
        await this.#clock.sleep(ms, signal);
        continue;
      }
      // Something comes due within a couple of ms (a burst of delayed messages): sleep here and
      // ask again. A blocking wait would cost a CLIENT UNBLOCK round trip more, and its wake-up
      // would lease only `max`, where the next receive may read ahead what came due meanwhile.
      if (timed && ms <= SHORT_WAIT_MS) {
        await systemClock.sleep(ms, signal);
        continue;
      }
      const woke = await this.#waiter.wait(unique, ms, signal, args, timed);
      if (woke.ok) pending = woke.reply;
      // The wait was cut short (lost connection, refused command): pause briefly
      // rather than spin on the receive script until the connection is back.
      else await systemClock.sleep(Math.min(ms, WAIT_RETRY_MS), signal);
    }
  }

  /** One receive script call without waiting, for read-ahead: up to `max`, in delivery order. */
  async #lease(channels: readonly string[], max: number, leaseMs: number): Promise<Leased[]> {
    this.#checkOpen();
    const reply = await this.#run("receive", [this.prefix, max, leaseMs, RECOVER_CAP, ...channels]);
    if (reply.length <= 3) {
      this.#idle.set(channels.join("\u0000"), reply);
      return [];
    }
    return parseDeliveries(reply, leaseMs).map((delivery) => ({ delivery, priority: delivery.message.priority, wasDue: delivery.message.runAt, seq: ++this.#leaseSeq }));
  }

  /** Give back leases that were read ahead and never handed out: a snooze to their own due time, no attempt used. */
  async #release(deliveries: readonly Delivery[]): Promise<void> {
    await this.retry(deliveries.map((d) => ({ id: d.message.id, token: d.token, runAt: d.message.runAt, attemptUsed: false })));
  }

  async ack(items: readonly AckItem[]): Promise<boolean[]> {
    this.#checkOpen();
    if (items.length === 0) return [];
    const args: (string | number)[] = [this.prefix, this.#completed.count, this.#completed.ageMs, Math.max(100, 2 * items.length)];
    for (const item of items) {
      const status = item.status ?? "completed";
      if (status !== "completed" && status !== "cancelled") throw new FerryError("INVALID_OPTION", `ack status must be "completed" or "cancelled", got ${JSON.stringify(status)}`);
      args.push(item.id, item.token, status, item.result === undefined ? "" : JSON.stringify(item.result));
    }
    return (await this.#run("ack", args)).map((x) => x === 1);
  }

  async retry(items: readonly RetryItem[]): Promise<boolean[]> {
    this.#checkOpen();
    if (items.length === 0) return [];
    const args: (string | number)[] = [this.prefix];
    for (const item of items) {
      if (!Number.isFinite(item.runAt) || item.runAt < 0) throw new FerryError("INVALID_OPTION", `retry runAt must be a time in ms since the epoch, got ${String(item.runAt)}`);
      args.push(item.id, item.token, String(item.runAt), item.attemptUsed ? "1" : "0", item.error ? JSON.stringify(item.error) : "");
    }
    return (await this.#run("retry", args)).map((x) => x === 1);
  }

  async deadLetter(items: readonly DeadItem[]): Promise<boolean[]> {
    this.#checkOpen();
    if (items.length === 0) return [];
    const args: (string | number)[] = [this.prefix, this.#dead.count, this.#dead.ageMs, Math.max(100, 2 * items.length)];
    for (const item of items) args.push(item.id, item.token, JSON.stringify(item.error));
    return (await this.#run("dead", args)).map((x) => x === 1);
  }

  async extend(items: readonly LeaseRef[], leaseMs: number): Promise<boolean[]> {
    this.#checkOpen();
    if (items.length === 0) return [];
    if (!Number.isFinite(leaseMs) || leaseMs < 1) throw new FerryError("INVALID_OPTION", `extend leaseMs must be >= 1, got ${String(leaseMs)}`, { details: { option: "leaseMs" } });
    const args: (string | number)[] = [this.prefix, Math.round(leaseMs)];
    for (const item of items) args.push(item.id, item.token);
    return (await this.#run("extend", args)).slice(1).map((x) => x === 1);
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // Held read-ahead goes back to waiting while the connection is still open.
    if (this.#client.status === "ready") await this.#ahead.close().catch(() => {});
    await this.#retainer.close();
    this.#closed = true;
    this.#monitor.stop();
    this.#waiter.close();
    if (this.#client.status === "ready") await this.#client.quit().catch(() => this.#client.disconnect());
    else this.#client.disconnect();
  }

  async counts(): Promise<ChannelCounts[]> {
    this.#checkOpen();
    return parseCounts(await this.#run("counts", [this.prefix]));
  }

  async #channels(channel: string | undefined): Promise<string[]> {
    if (channel !== undefined) return [assertChannel(channel)];
    return this.#client.smembers(`${this.prefix}:channels`);
  }

  /**
   * List messages in one state. Order: completed, cancelled and dead by finish
   * time, newest first; active by lease end, latest first; waiting in reverse
   * delivery order (delayed, latest due first, then ready, last to run first).
   */
  async list(query: ListQuery): Promise<MessageRecord[]> {
    this.#checkOpen();
    if (!MESSAGE_STATES.includes(query.state)) throw new FerryError("INVALID_OPTION", `state must be one of ${MESSAGE_STATES.join(", ")}`);
    const limit = query.limit ?? 50;
    const offset = query.offset ?? 0;
    if (!Number.isInteger(limit) || limit < 0 || !Number.isInteger(offset) || offset < 0) throw new FerryError("INVALID_OPTION", "list limit and offset must be whole numbers >= 0");
    if (limit === 0) return [];
    try {
      return await listRecords(this.#client, this.prefix, await this.#channels(query.channel), query, limit, offset);
    } catch (err) {
      throw this.#wrap(err, "list");
    }
  }

  async get(id: string): Promise<MessageRecord | null> {
    this.#checkOpen();
    if (!isMessageId(id)) return null;
    try {
      return (await readRecords(this.#client, this.prefix, [id]))[0] ?? null;
    } catch (err) {
      throw this.#wrap(err, "get");
    }
  }

  async replay(ids: readonly string[]): Promise<string[]> {
    this.#checkOpen();
    const valid = ids.filter((id) => isMessageId(id));
    if (valid.length === 0) return [];
    return (await this.#run("replay", [this.prefix, ...valid])) as string[];
  }

  async discard(ids: readonly string[]): Promise<string[]> {
    this.#checkOpen();
    const valid = ids.filter((id) => isMessageId(id));
    if (valid.length === 0) return [];
    return (await this.#run("discard", [this.prefix, ...valid])) as string[];
  }

  async prune(options: { before: number; states?: readonly MessageState[] }): Promise<number> {
    this.#checkOpen();
    if (!Number.isFinite(options.before)) throw new FerryError("INVALID_OPTION", `prune before must be a time in ms, got ${String(options.before)}`);
    const states = (options.states ?? ["completed", "cancelled"]).filter((s) => FINISHED.includes(s));
    const cap = 1000;
    let total = 0;
    for (const ch of await this.#channels(undefined)) {
      for (const state of states) {
        for (;;) {
          const n = Number(await this.#run("prune", [this.prefix, state, ch, String(Math.floor(options.before)), cap]));
          total += n;
          if (n < cap) break;
        }
      }
    }
    return total;
  }

  async pause(channel: string): Promise<void> {
    this.#checkOpen();
    await this.#client.sadd(`${this.prefix}:paused`, assertChannel(channel));
    this.#ahead.releaseChannel(channel);
  }

  async resume(channel: string): Promise<void> {
    this.#checkOpen();
    const n = `${this.prefix}:n:${assertChannel(channel)}`;
    // Wake blocked receivers so they look at the channel again.
    await this.#client.multi().srem(`${this.prefix}:paused`, channel).lpush(n, "1").ltrim(n, 0, 15).exec();
  }

  async paused(): Promise<string[]> {
    this.#checkOpen();
    return (await this.#client.smembers(`${this.prefix}:paused`)).sort();
  }
}
