/**
 * The Ferry: where tasks and events are registered, channels are bound to
 * transports, and work is dispatched, published and run.
 */
import { systemClock, type Clock } from "../core/clock.ts";
import { parseDuration } from "../core/duration.ts";
import { newId, type Envelope, type MessageHeaders } from "../core/envelope.ts";
import { FerryError, toError } from "../core/errors.ts";
import { EventStream, type FerryEvents } from "../core/events.ts";
import { assertChannel, assertPattern } from "../core/names.ts";
import { checkOptionKeys } from "../core/options.ts";
import { assertJson, validatePayload } from "../core/schema.ts";
import { instrument } from "../transport/instrumented.ts";
import { createTransport, parseTransportUrl, redactUrl } from "../transport/registry.ts";
import { isTransactional, type SendReceipt, type Transport } from "../transport/types.ts";
import { Worker, type WorkerHost, type WorkerOptions } from "../worker/worker.ts";
import { runHandler } from "../worker/outcome.ts";
import type { EventDefinition, InputOf, ResultOf, TaskContext, TaskDefinition } from "./define.ts";
import { ReplyInbox } from "./reply-inbox.ts";
import type { Bridge, BridgeOptions } from "../transport/amqp/bridge.ts";
import { Router } from "./routing.ts";
import {
  buildEnvelope,
  buildEnvelopes,
  envelopeTemplate,
  DISPATCH_OPTIONS,
  FERRY_OPTIONS,
  PUBLISH_OPTIONS,
  REQUEST_OPTIONS,
  type DispatchOptions,
  type DispatchReceipt,
  type FerryOptions,
  type PublishOptions,
  type PublishReceipt,
  type RequestOptions,
  type SubscribeOptions,
  type TransportSpec,
} from "./bus-options.ts";

export type { DispatchOptions, DispatchReceipt, FerryOptions, PublishOptions, PublishReceipt, RequestOptions, SubscribeOptions, TransportSpec };

/** The default transport URL: an SQLite file under ./data. */
export const DEFAULT_TRANSPORT_URL = "sqlite://./data/ferry.db";

/** Create a Ferry. Transports connect lazily, on first use. */
export function createFerry(options: FerryOptions = {}): Ferry {
  return new Ferry(options);
}

/** The bus: register, dispatch, publish, run workers. */
export class Ferry {
  /** The typed event stream: runs, transport calls, warnings. */
  readonly events = new EventStream<FerryEvents>();
  readonly defaultChannel: string;
  readonly clock: Clock;
  #tasks = new Map<string, TaskDefinition>();
  #events = new Map<string, EventDefinition>();
  #router = new Router();
  #defaultSpec: TransportSpec;
  #channelSpecs = new Map<string, TransportSpec>();
  #transports = new Map<string, Promise<Transport>>();
  #workers = new Set<Worker>();
  #closed = false;

  constructor(options: FerryOptions = {}) {
    checkOptionKeys(options, FERRY_OPTIONS, "createFerry");
    this.clock = options.clock ?? systemClock;
    this.defaultChannel = assertChannel(options.defaultChannel ?? "default");
    this.#defaultSpec = options.transport ?? process.env.FERRY_URL ?? DEFAULT_TRANSPORT_URL;
    checkSpec(this.#defaultSpec, "transport");
    for (const [channel, spec] of Object.entries(options.channels ?? {})) {
      assertChannel(channel);
      checkSpec(spec, `channels.${channel}`);
      this.#channelSpecs.set(channel, spec);
    }
    if (options.onRun !== undefined) {
      if (typeof options.onRun !== "function") throw new FerryError("INVALID_OPTION", "onRun must be a function", { details: { option: "onRun" } });
      this.events.on("run", options.onRun);
    }
    this.register(...(options.tasks ?? []));
    for (const e of options.events ?? []) this.#events.set(e.name, e);
  }

  /**
   * Register tasks this Ferry can run.
   * @throws FerryError `DUPLICATE_TASK` when another task has the same name.
   */
  register(...tasks: TaskDefinition[]): this {
    for (const task of tasks) {
      if (task?.kind !== "task") throw new FerryError("INVALID_OPTION", "register() takes tasks made by defineTask()");
      const existing = this.#tasks.get(task.name);
      if (existing && existing !== task) throw new FerryError("DUPLICATE_TASK", `two different tasks are named "${task.name}"; task names must be unique`);
      this.#tasks.set(task.name, task);
    }
    return this;
  }

  /** A registered task by name. */
  task(name: string): TaskDefinition | undefined {
    return this.#tasks.get(name);
  }

  /** Every registered task. */
  tasks(): TaskDefinition[] {
    return [...this.#tasks.values()];
  }

  /** Every event this Ferry knows by definition (from `events` and `on()`). */
  eventDefinitions(): EventDefinition[] {
    return [...this.#events.values()];
  }

  /**
   * Subscribe a task to an event (or an event name pattern like `order.*.paid`):
   * each publish fans out to it. With a channel it is delivered async (optionally
   * delayed); without, it runs in the publisher's process.
   */
  on(event: EventDefinition | string, task: TaskDefinition, options: SubscribeOptions = {}): this {
    checkOptionKeys(options, ["channel", "delay", "map"], "on");
    const pattern = typeof event === "string" ? assertPattern(event) : event.name;
    if (typeof event !== "string") this.#events.set(event.name, event);
    if (task?.kind !== "task") throw new FerryError("INVALID_OPTION", "on(event, task) needs a task made by defineTask()");
    this.register(task);
    const channel = options.channel === undefined ? undefined : assertChannel(options.channel);
    const delayMs = options.delay === undefined ? 0 : parseDuration(options.delay, "on delay");
    if (delayMs > 0 && channel === undefined) {
      throw new FerryError("INVALID_OPTION", `a delayed subscription of "${task.name}" needs a channel: a sync subscription runs at once in the publisher`, { details: { option: "delay" } });
    }
    if (options.map !== undefined && typeof options.map !== "function") throw new FerryError("INVALID_OPTION", "on map must be a function", { details: { option: "map" } });
    this.#router.add({ pattern, task, channel, delayMs, map: options.map as ((p: unknown) => unknown) | undefined });
    return this;
  }

  /** The channel a task's messages use unless told otherwise. */
  channelOf(task: TaskDefinition): string {
    return task.channel ?? this.defaultChannel;
  }

  /** Every channel that registered tasks and subscriptions use. */
  channels(): string[] {
    const set = new Set<string>();
    for (const t of this.#tasks.values()) set.add(this.channelOf(t));
    for (const s of this.#router.all()) if (s.channel) set.add(s.channel);
    return [...set];
  }

  /** The transport bound to a channel (connecting on first use). */
  async transport(channel: string): Promise<Transport> {
    const transport = (await this.#resolve(channel)).transport;
    if (!this.#closed) this.#bound.set(channel, transport);
    return transport;
  }

  async #resolve(channel: string): Promise<{ key: string; transport: Transport }> {
    if (this.#closed) throw new FerryError("TRANSPORT_CLOSED", "this Ferry is closed");
    const spec = this.#channelSpecs.get(channel) ?? this.#defaultSpec;
    const key = typeof spec === "string" ? spec : `instance:${spec.kind}:${this.#instanceKey(spec)}`;
    let pending = this.#transports.get(key);
    if (!pending) {
      pending = (async () => {
        try {
          return instrument(typeof spec === "string" ? await createTransport(spec) : spec, this.events);
        } catch (err) {
          this.#transports.delete(key);
          if (err instanceof FerryError) throw err;
          throw new FerryError("TRANSPORT_UNAVAILABLE", `cannot connect to ${typeof spec === "string" ? redactUrl(spec) : spec.kind}: ${toError(err).message}`, { cause: err });
        }
      })();
      this.#transports.set(key, pending);
    }
    return { key, transport: await pending };
  }

  #instances = new Map<Transport, number>();
  #instanceKey(t: Transport): number {
    let n = this.#instances.get(t);
    if (n === undefined) this.#instances.set(t, (n = this.#instances.size));
    return n;
  }

  #taskFor(task: TaskDefinition | string, channel: string | undefined): TaskDefinition | string {
    if (typeof task !== "string") {
      if (task?.kind !== "task") throw new FerryError("INVALID_OPTION", "dispatch() takes a task made by defineTask(), or a task name");
      return task;
    }
    const found = this.#tasks.get(task);
    if (found) return found;
    if (channel === undefined) throw new FerryError("UNKNOWN_TASK", `no task "${task}" is registered; register it, or pass { channel } to send to a worker elsewhere`);
    return task;
  }

  #envelope(task: TaskDefinition | string, payload: unknown, options: DispatchOptions, now: number, id?: string): Envelope | Promise<Envelope> {
    return buildEnvelope(task, payload, options, this.#channelFor(task, options), now, id);
  }

  #channelFor(task: TaskDefinition | string, options: DispatchOptions): string {
    return options.channel ?? (typeof task === "string" ? this.defaultChannel : this.channelOf(task));
  }

  /** Transports already connected, by channel: a send to a known channel skips the lookup. */
  #bound = new Map<string, Transport>();

  #send(envelopes: Envelope[], transaction: unknown): Promise<SendReceipt[]> {
    // The common case, one channel already connected and no caller's transaction: straight to its transport.
    const t = envelopes.length > 0 && transaction === undefined && !this.#closed ? this.#bound.get(envelopes[0]!.channel) : undefined;
    if (t && (envelopes.length === 1 || envelopes.every((e) => e.channel === envelopes[0]!.channel))) return t.send(envelopes);
    return this.#sendGrouped(envelopes, transaction);
  }

  async #sendGrouped(envelopes: Envelope[], transaction: unknown): Promise<SendReceipt[]> {
    const byTransport = new Map<Transport, number[]>();
    const byChannel = new Map<string, Transport>();
    for (let i = 0; i < envelopes.length; i++) {
      const channel = envelopes[i]!.channel;
      let t = byChannel.get(channel);
      if (!t) byChannel.set(channel, (t = await this.transport(channel)));
      let list = byTransport.get(t);
      if (!list) byTransport.set(t, (list = []));
      list.push(i);
    }
    const receipts: SendReceipt[] = new Array(envelopes.length);
    await Promise.all(
      [...byTransport].map(async ([t, indexes]) => {
        const batch = indexes.map((i) => envelopes[i]!);
        let out: SendReceipt[];
        if (transaction !== undefined) {
          if (!isTransactional(t)) throw new FerryError("NOT_SUPPORTED", `the ${t.kind} transport cannot enqueue inside a caller's transaction; use a PostgreSQL channel for transactional enqueue`);
          out = await t.sendWithin(transaction, batch);
        } else out = await t.send(batch);
        indexes.forEach((i, k) => (receipts[i] = out[k]!));
      }),
    );
    return receipts;
  }

  #emitDispatched(envelopes: Envelope[], receipts: SendReceipt[]): DispatchReceipt[] {
    return envelopes.map((e, i) => this.#dispatched(e, receipts[i]!));
  }

  #dispatched(e: Envelope, r: SendReceipt): DispatchReceipt {
    if (this.events.has("dispatched")) this.events.emit("dispatched", { id: r.id, task: e.name, channel: e.channel, payload: e.payload, deduplicated: r.deduplicated, runAt: e.runAt });
    return { id: r.id, deduplicated: r.deduplicated, channel: e.channel, task: e.name };
  }

  /**
   * Enqueue one task message.
   * @throws FerryError `INVALID_PAYLOAD`, `INVALID_OPTION`, `UNKNOWN_TASK`, `TRANSPORT_UNAVAILABLE`
   */
  async dispatch<T extends TaskDefinition>(task: T | string, payload: T extends TaskDefinition ? InputOf<T> : unknown, options: DispatchOptions = {}): Promise<DispatchReceipt> {
    checkOptionKeys(options, DISPATCH_OPTIONS, "dispatch");
    const def = this.#taskFor(task, options.channel);
    const made = this.#envelope(def, payload, options, this.clock.now(), options.id);
    const envelope = made instanceof Promise ? await made : made;
    const receipts = await this.#send([envelope], options.transaction);
    return this.#dispatched(envelope, receipts[0]!);
  }

  /**
   * Enqueue many messages of one task in one round trip per transport (Redis: pipelined
   * chunks). Every payload is checked before anything is sent. A failed batch stored
   * nothing on SQLite and PostgreSQL; on Redis and RabbitMQ it may have stored a first
   * part, and the error's `details.stored` (Redis) says how many (see `Transport.send`).
   */
  async dispatchMany<T extends TaskDefinition>(task: T | string, payloads: Array<T extends TaskDefinition ? InputOf<T> : unknown>, options: Omit<DispatchOptions, "dedupKey" | "id"> = {}): Promise<DispatchReceipt[]> {
    checkOptionKeys(options, DISPATCH_OPTIONS.filter((k) => k !== "id"), "dispatchMany");
    if (!Array.isArray(payloads)) throw new FerryError("INVALID_OPTION", "dispatchMany takes an array of payloads", { details: { option: "payloads" } });
    const def = this.#taskFor(task, options.channel);
    const now = this.clock.now();
    const envelopes = payloads.length === 0 ? [] : await buildEnvelopes(envelopeTemplate(def, options, this.#channelFor(def, options), now), payloads, now);
    const receipts = await this.#send(envelopes, options.transaction);
    return this.#emitDispatched(envelopes, receipts);
  }

  /**
   * Publish an event: sync subscribers run here first (a failure rejects the
   * publish before anything is sent), then async ones are enqueued.
   * @throws FerryError `INVALID_PAYLOAD`, `INVALID_NAME`, `HANDLER_FAILED`
   */
  async publish<E extends EventDefinition>(event: E | string, payload: E extends EventDefinition ? InputOf<E> : unknown, options: PublishOptions = {}): Promise<PublishReceipt> {
    checkOptionKeys(options, PUBLISH_OPTIONS, "publish");
    const name = typeof event === "string" ? assertPattern(event) : event.name;
    if (name.split(".").some((w) => w === "*" || w === "#")) throw new FerryError("INVALID_NAME", `publish a concrete event name, not a pattern: "${name}"`);
    const def = typeof event === "string" ? this.#events.get(name) : event;
    await validatePayload(def?.schema, payload, `payload of event "${name}"`);
    assertJson(payload, `payload of event "${name}"`);
    const id = newId(this.clock.now());
    const correlationId = options.correlationId ?? id;
    const subs = this.#router.match(name);
    const ran: string[] = [];
    for (const sub of subs.filter((s) => s.channel === undefined)) {
      const taskPayload = sub.map ? sub.map(payload) : payload;
      await this.#runSync(sub.task, taskPayload, { correlationId, causationId: id, event: name });
      ran.push(sub.task.name);
    }
    const now = this.clock.now();
    const envelopes: Envelope[] = [];
    for (const sub of subs) {
      if (sub.channel === undefined) continue;
      envelopes.push(
        await this.#envelope(sub.task, sub.map ? sub.map(payload) : payload, {
          channel: sub.channel,
          ...(sub.delayMs > 0 ? { delay: sub.delayMs } : {}),
          correlationId,
          causationId: id,
          headers: { ...options.headers, event: name },
        }, now),
      );
    }
    const receipts = envelopes.length > 0 ? await this.#send(envelopes, options.transaction) : [];
    const messages = this.#emitDispatched(envelopes, receipts);
    this.events.emit("published", { id, event: name, payload, messageIds: messages.map((m) => m.id) });
    return { id, event: name, messages, ran };
  }

  async #runSync(task: TaskDefinition, payload: unknown, headers: MessageHeaders): Promise<void> {
    const id = newId(this.clock.now());
    const startedAt = this.clock.now();
    const controller = new AbortController();
    const ctx: TaskContext = { id, task: task.name, channel: "sync", attempt: 1, maxAttempts: 1, headers, signal: controller.signal, sync: true };
    const base = { channel: "sync", id, task: task.name, params: payload, attempt: 1, maxAttempts: 1, startedAt, correlationId: headers.correlationId, sync: true };
    try {
      const valid = await validatePayload(task.schema, payload, `payload of "${task.name}"`);
      const result = await runHandler(task, valid, ctx, controller);
      this.events.emit("run", { ...base, status: "completed", durationMs: this.clock.now() - startedAt, message: `${task.name} completed in the publisher`, ...(result === undefined ? {} : { result }) });
    } catch (err) {
      const e = toError(err);
      const code = err instanceof FerryError ? err.code : "HANDLER_FAILED";
      this.events.emit("run", { ...base, status: "dead", durationMs: this.clock.now() - startedAt, message: `${task.name} failed in the publisher: ${e.message}`, error: { at: this.clock.now(), attempt: 1, code, message: e.message } });
      throw new FerryError("HANDLER_FAILED", `sync subscriber "${task.name}" of event "${headers.event}" failed: ${e.message}; nothing was enqueued for this publish`, { cause: err });
    }
  }

  /**
   * Dispatch a task and wait for its result: resolves with what the handler
   * returned, rejects with a `FerryError` on timeout (`REQUEST_TIMEOUT`), abort
   * (`ABORTED`), a failure that dead-lettered it or a cancellation (`HANDLER_FAILED`).
   * A reply arriving after the caller stopped waiting is dropped and counted.
   */
  async request<T extends TaskDefinition>(task: T, payload: InputOf<T>, options: RequestOptions = {}): Promise<ResultOf<T>> {
    checkOptionKeys(options, REQUEST_OPTIONS, "request");
    const def = this.#taskFor(task, options.channel);
    const timeoutMs = parseDuration(options.timeout ?? "30s", "request timeout");
    const channel = options.channel ?? (typeof def === "string" ? this.defaultChannel : this.channelOf(def));
    const inbox = await this.#inbox(channel);
    const id = newId(this.clock.now());
    const { timeout: _t, signal, ...dispatchOptions } = options;
    const envelope = await this.#envelope(def, payload, { ...dispatchOptions, headers: { ...options.headers, replyTo: inbox.channel } }, this.clock.now(), id);
    const waiting = inbox.wait(id, timeoutMs, signal);
    try {
      const receipts = await this.#send([envelope], undefined);
      this.#emitDispatched([envelope], receipts);
    } catch (err) {
      waiting.cancel();
      throw err;
    }
    const reply = await waiting.promise;
    if (reply.status === "completed") return reply.result as ResultOf<T>;
    throw new FerryError("HANDLER_FAILED", `request ${id} to "${envelope.name}" ${reply.status === "cancelled" ? "was cancelled" : "failed"}: ${reply.error?.message ?? "no detail"}`, { details: { id, status: reply.status, error: reply.error } });
  }

  #inboxes = new Map<Transport, ReplyInbox>();
  async #inbox(channel: string): Promise<ReplyInbox> {
    const transport = await this.transport(channel);
    let inbox = this.#inboxes.get(transport);
    if (!inbox) this.#inboxes.set(transport, (inbox = new ReplyInbox(transport)));
    return inbox;
  }

  /** Request/reply figures: callers waiting now, replies that came too late, and this process's inbox channels. */
  async requestStats(): Promise<{ pending: number; lateReplies: number; inboxes: string[] }> {
    let pending = 0;
    let lateReplies = 0;
    const inboxes: string[] = [];
    for (const inbox of this.#inboxes.values()) {
      pending += inbox.pending;
      lateReplies += inbox.lateReplies;
      inboxes.push(inbox.channel);
    }
    return { pending, lateReplies, inboxes };
  }

  /**
   * Consume an exchange that Ferry does not own (RabbitMQ) and turn each message
   * into a task; the source message is acked only once the task is enqueued.
   * See docs/amqp.md for the options.
   */
  async bridge<T extends TaskDefinition>(options: BridgeOptions<T>): Promise<Bridge> {
    const { startBridge } = await import("../transport/amqp/bridge.ts");
    const bridge = await startBridge(this, options);
    this.#bridges.add(bridge);
    return bridge;
  }

  #bridges = new Set<{ close(): Promise<void> }>();

  /** Make a worker for this Ferry's tasks. Call `start()` on it. */
  worker(options: WorkerOptions = {}): Worker {
    const host: WorkerHost = {
      task: (name) => this.#tasks.get(name),
      transportFor: (channel) => this.#resolve(channel),
      defaultChannels: () => this.channels(),
      events: this.events,
      now: () => this.clock.now(),
    };
    const worker = new Worker(host, options);
    this.#workers.add(worker);
    return worker;
  }

  /** Stop every worker made here (gracefully), then close the transports. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.all([...this.#bridges].map((b) => b.close()));
    await Promise.all([...this.#workers].map((w) => w.stop()));
    this.#closed = true;
    this.#bound.clear();
    await Promise.all([...this.#inboxes.values()].map((inbox) => inbox.close()));
    const transports = await Promise.allSettled(this.#transports.values());
    await Promise.all(transports.map((r) => (r.status === "fulfilled" ? r.value.close() : undefined)));
    this.#transports.clear();
  }
}

function checkSpec(spec: unknown, what: string): void {
  if (typeof spec === "string") parseTransportUrl(spec);
  else if (typeof spec !== "object" || spec === null || typeof (spec as Transport).receive !== "function") {
    throw new FerryError("INVALID_OPTION", `${what} must be a transport URL or a Transport instance`, { details: { option: what } });
  }
}
