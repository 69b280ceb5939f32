/**
 * The worker: takes deliveries from one or more channels and runs their
 * handlers with bounded concurrency, lease heartbeats, a timeout per attempt,
 * retries by policy, dead-lettering, and a graceful drain.
 */
import { FerryError, toError } from "../core/errors.ts";
import type { EventStream, FerryEvents, RunReport, RunStatus } from "../core/events.ts";
import { parseDuration, type Duration } from "../core/duration.ts";
import { assertChannel } from "../core/names.ts";
import { checkInteger, checkOptionKeys } from "../core/options.ts";
import { validatePayload } from "../core/schema.ts";
import type { Delivery, Transport } from "../transport/types.ts";
import type { TaskContext, TaskDefinition } from "../bus/define.ts";
import { attemptError, decideFailure, runHandler } from "./outcome.ts";
import { replyEnvelope, type ReplyPayload } from "../bus/reply-inbox.ts";
import { Settler } from "./settler.ts";
import { RunControl } from "./run-control.ts";

/**
 * How many finished runs, per slot, may wait for their settle (ack, retry, dead-letter)
 * before the worker stops taking new work. A settle answered late is a run a crash
 * repeats: without a limit, a store that fell behind (PostgreSQL at full CPU took
 * 120 ms per ack batch) let a worker finish hundreds of runs whose acks were still
 * queued or in flight, and a SIGKILL then ran them all again (R1 on PostgreSQL,
 * 2 x 8, a kill a second: 6 runs of 20 over the ceiling of kills x concurrency, with
 * 80-1,708 duplicates against 24-88). At four per slot a kill repeats at most the
 * runs in its handlers and four times the concurrency (measured: 0-16 duplicates, 14 runs of 14 under the ceiling;
 * at eight per slot one run of 8 went over).
 */
const SETTLE_AHEAD = 4;

/**
 * The budget is never below this: at low concurrency an ack's round trip outlasts
 * several runs (PostgreSQL at concurrency 1: four held it back by 18 %, 32 by about 5 %,
 * within noise). 32 is the budget R1's 8 slots were measured with.
 */
const SETTLE_FLOOR = 32;

/** What a worker needs from its Ferry. */
export interface WorkerHost {
  task(name: string): TaskDefinition | undefined;
  /** The transport of a channel, and a key that is the same for channels sharing one transport. */
  transportFor(channel: string): Promise<{ key: string; transport: Transport }>;
  defaultChannels(): string[];
  readonly events: EventStream<FerryEvents>;
  now(): number;
}

/** Options of a worker. */
export interface WorkerOptions {
  /** Channels to take work from. Default: every channel the Ferry's tasks and subscriptions use. */
  channels?: string[];
  /** Most handlers running at once. Default 10. */
  concurrency?: number;
  /** Lease length; renewed by heartbeats while the handler runs. Default `"30s"`. */
  lease?: Duration;
  /** How long `stop()` waits for running handlers before aborting them. Default `"10s"`. */
  shutdownGrace?: Duration;
  /** Stop gracefully on SIGTERM and SIGINT. Default false (the CLI sets it). */
  handleSignals?: boolean;
  /** Called after every run, with seed 002's fields. A throwing callback is reported, never fatal. */
  onRun?: (report: RunReport) => void;
  /** Where handlers run. Default: in this process. A process pool plugs in here. */
  executor?: Executor;
}

/**
 * Runs one handler attempt. The worker keeps the lease, the retry policy and the
 * settling; an executor only runs the code and reports how it ended.
 */
export interface Executor {
  /** Run `task` with `payload`; resolve with its result or reject with what it threw. Must honour `controller`. */
  run(task: TaskDefinition, payload: unknown, ctx: TaskContext, controller: AbortController): Promise<unknown>;
  /** Release the executor's resources when the worker stops. */
  close?(): Promise<void>;
  /** Called once at start with the Ferry's event stream, for figures and warnings. */
  attach?(events: EventStream<FerryEvents>): void;
}

/** The default executor: handlers run in this process. */
export const inProcessExecutor: Executor = { run: runHandler };

interface Active {
  delivery: Delivery;
  controller: RunControl;
  group: Group;
  startedAt: number;
  /** Set when the worker gave the message back at shutdown; its late outcome is ignored. */
  returned: boolean;
  /** Set once the handler ended and its slot went back to the fetch loop (the settle may still be in flight). */
  slotFreed: boolean;
  done: Promise<void>;
}

interface Group {
  key: string;
  transport: Transport;
  settler: Settler;
  channels: string[];
  /** Slots this group may fill. */
  share: number;
  active: number;
  loop?: Promise<void>;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The abort reason handlers see when the worker shuts down. */
const SHUTDOWN = new FerryError("ABORTED", "the worker is shutting down; this attempt will be given back to the queue");

const WORKER_OPTIONS = ["channels", "concurrency", "lease", "shutdownGrace", "handleSignals", "onRun", "executor"] as const;

/** Runs handlers for deliveries from one or more channels. */
export class Worker {
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly graceMs: number;
  #host: WorkerHost;
  #options: WorkerOptions;
  #executor: Executor;
  #groups: Group[] = [];
  #active = new Map<string, Active>();
  #state: "idle" | "starting" | "running" | "draining" | "stopped" = "idle";
  #stopFetch = new AbortController();
  #slotWaiters: Array<() => void> = [];
  #heartbeat: NodeJS.Timeout | undefined;
  #stopping: Promise<void> | undefined;
  #signalHandler: (() => void) | undefined;
  #completed = 0;
  #failed = 0;

  constructor(host: WorkerHost, options: WorkerOptions = {}) {
    checkOptionKeys(options, WORKER_OPTIONS, "worker");
    this.#host = host;
    this.#options = options;
    this.#executor = options.executor ?? inProcessExecutor;
    this.concurrency = checkInteger(options.concurrency ?? 10, "worker concurrency", 1, 10_000);
    this.leaseMs = parseDuration(options.lease ?? "30s", "worker lease");
    if (this.leaseMs < 100) throw new FerryError("INVALID_OPTION", `worker lease must be at least 100 ms, got ${this.leaseMs}`, { details: { option: "lease" } });
    this.graceMs = parseDuration(options.shutdownGrace ?? "10s", "worker shutdownGrace");
    if (options.onRun !== undefined && typeof options.onRun !== "function") throw new FerryError("INVALID_OPTION", "worker onRun must be a function", { details: { option: "onRun" } });
    if (options.channels !== undefined && (!Array.isArray(options.channels) || options.channels.length === 0)) {
      throw new FerryError("INVALID_OPTION", "worker channels must be a non-empty array of channel names", { details: { option: "channels" } });
    }
    options.channels?.forEach(assertChannel);
  }

  /** Handlers running now. */
  get active(): number {
    return this.#active.size;
  }

  /** Runs finished since start: completed (incl. cancelled) and failed attempts. */
  get stats(): { completed: number; failed: number; active: number } {
    return { completed: this.#completed, failed: this.#failed, active: this.#active.size };
  }

  /** The worker's state. */
  get state(): string {
    return this.#state;
  }

  /** Connect to the channels' transports and start taking work. */
  async start(): Promise<void> {
    if (this.#state !== "idle") throw new FerryError("INVALID_OPTION", `worker already ${this.#state}; create a new worker to start again`);
    this.#state = "starting";
    this.#executor.attach?.(this.#host.events);
    this.#emitState();
    const channels = this.#options.channels ?? this.#host.defaultChannels();
    if (channels.length === 0) throw new FerryError("INVALID_OPTION", "worker has no channels: register tasks first or pass channels", { details: { option: "channels" } });
    const byKey = new Map<string, Group>();
    for (const channel of [...new Set(channels)]) {
      const { key, transport } = await this.#host.transportFor(channel);
      let group = byKey.get(key);
      if (!group) byKey.set(key, (group = { key, transport, settler: new Settler(transport, undefined, () => this.#wakeFetch()), channels: [], share: 0, active: 0 }));
      group.channels.push(channel);
    }
    this.#groups = [...byKey.values()];
    // One transport takes every slot; several share them out, so none can starve the others.
    const base = Math.floor(this.concurrency / this.#groups.length);
    this.#groups.forEach((g, i) => (g.share = Math.max(1, base + (i < this.concurrency % this.#groups.length ? 1 : 0))));
    this.#state = "running";
    this.#emitState();
    const beat = Math.max(50, Math.floor(this.leaseMs / 3));
    this.#heartbeat = setInterval(() => void this.#extendLeases(), beat);
    for (const g of this.#groups) g.loop = this.#fetchLoop(g);
    if (this.#options.handleSignals) {
      this.#signalHandler = () => void this.stop();
      process.once("SIGTERM", this.#signalHandler);
      process.once("SIGINT", this.#signalHandler);
    }
  }

  #emitState(): void {
    const state = this.#state === "idle" ? "starting" : this.#state;
    this.#host.events.emit("worker:state", { state, active: this.#active.size });
  }

  async #fetchLoop(g: Group): Promise<void> {
    let failures = 0;
    while (this.#state === "running") {
      if (g.active >= g.share || g.settler.unsettled >= Math.max(SETTLE_AHEAD * g.share, SETTLE_FLOOR)) {
        await new Promise<void>((r) => this.#slotWaiters.push(r));
        continue;
      }
      let deliveries: Delivery[];
      try {
        deliveries = await g.transport.receive({ channels: g.channels, max: g.share - g.active, leaseMs: this.leaseMs, waitMs: 5000, signal: this.#stopFetch.signal });
        failures = 0;
      } catch (err) {
        if (this.#state !== "running") break;
        failures++;
        const wait = Math.min(30_000, 100 * 2 ** Math.min(failures, 8));
        this.#warn("TRANSPORT_UNAVAILABLE", `receive from ${g.transport.kind} failed (${toError(err).message}); retrying in ${wait} ms`, err);
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      for (const d of deliveries) this.#start(g, d);
      // A transport that answers synchronously (SQLite) would otherwise keep this loop in
      // microtasks and starve the event loop: settles, heartbeats and timers wait for a turn.
      await yieldToEventLoop();
    }
  }

  #warn(code: string, message: string, err?: unknown): void {
    if (this.#host.events.has("warning")) this.#host.events.emit("warning", { code, message, ...(err === undefined ? {} : { error: toError(err) }) });
    else process.emitWarning(`ferry worker: ${message}`, { code: `FERRY_${code}` });
  }

  /**
   * Give the slot back as soon as the handler ends: the next receive overlaps
   * this run's settle, which the settler batches with others.
   */
  #freeSlot(a: Active): void {
    if (a.slotFreed) return;
    a.slotFreed = true;
    a.group.active--;
    this.#wakeFetch();
  }

  /** Let fetch loops waiting for a slot or for settles look again. */
  #wakeFetch(): void {
    if (this.#slotWaiters.length === 0) return;
    const waiters = this.#slotWaiters.splice(0);
    for (const w of waiters) w();
  }

  #start(g: Group, delivery: Delivery): void {
    g.active++;
    const active: Active = { delivery, controller: new RunControl(), group: g, startedAt: this.#host.now(), returned: false, slotFreed: false, done: Promise.resolve() };
    this.#active.set(delivery.message.id, active);
    active.done = this.#run(active).finally(() => {
      this.#active.delete(delivery.message.id);
      this.#freeSlot(active);
    });
  }

  async #run(a: Active): Promise<void> {
    const { message } = a.delivery;
    const task = this.#host.task(message.name);
    const events = this.#host.events;
    if (events.has("run:start")) events.emit("run:start", { id: message.id, task: message.name, channel: message.channel, attempt: message.attempt });
    let payload: unknown = message.payload;
    let result: unknown;
    let thrown: unknown;
    let ok = false;
    try {
      if (!task) throw new FerryError("NO_HANDLER", `no task "${message.name}" is registered in this worker; register it with createFerry({ tasks }) or ferry.register(), then replay the message`);
      if (message.attempt > message.maxAttempts) {
        throw new FerryError("WORKER_CRASHED", `attempt ${message.attempt - 1} of ${message.maxAttempts} never finished: its worker crashed or hung until its lease ran out`);
      }
      payload = await validatePayload(task.schema, message.payload, `payload of "${message.name}" (message ${message.id})`);
      const control = a.controller;
      const ctx: TaskContext = {
        id: message.id,
        task: message.name,
        channel: message.channel,
        attempt: message.attempt,
        maxAttempts: message.maxAttempts,
        headers: message.headers,
        // made on first read: most runs never need one (see run-control.ts)
        get signal() {
          return control.signal;
        },
        sync: false,
      };
      result = await this.#executor.run(task, payload, ctx, a.controller);
      ok = true;
    } catch (err) {
      thrown = err;
    }
    this.#freeSlot(a);
    if (a.returned) return;
    if (!ok && a.controller.reason === SHUTDOWN) {
      // Interrupted by our own shutdown, not failed: give it back without using the attempt.
      a.returned = true;
      const { message, token } = a.delivery;
      const accepted = await a.group.settler.retry({ id: message.id, token, runAt: this.#host.now(), attemptUsed: false }).catch(() => false);
      this.#report(a, accepted ? "returned" : "lease-lost", payload, undefined, undefined, undefined, this.#host.now());
      return;
    }
    await this.#settle(a, task, payload, ok, result, thrown);
  }

  async #settle(a: Active, task: TaskDefinition | undefined, payload: unknown, ok: boolean, result: unknown, thrown: unknown): Promise<void> {
    const { message, token } = a.delivery;
    const settler = a.group.settler;
    const now = this.#host.now();
    const ref = { id: message.id, token };
    let status: RunStatus;
    let accepted: boolean;
    let error = undefined as ReturnType<typeof attemptError> | undefined;
    let nextRunAt: number | undefined;
    try {
      if (ok) {
        status = "completed";
        accepted = await settler.ack(result === undefined ? ref : { ...ref, result });
      } else {
        const decision = message.attempt > message.maxAttempts
          ? ({ kind: "dead", error: attemptError(thrown, message.attempt - 1, now) } as const)
          : decideFailure(thrown, task, message.attempt, message.maxAttempts, now);
        if (decision.kind === "snooze") {
          status = "snoozed";
          nextRunAt = now + decision.delayMs;
          accepted = await settler.retry({ ...ref, runAt: nextRunAt, attemptUsed: false });
        } else if (decision.kind === "retry") {
          status = "retrying";
          error = decision.error;
          nextRunAt = now + decision.delayMs;
          accepted = await settler.retry({ ...ref, runAt: nextRunAt, attemptUsed: true, error });
        } else if (decision.kind === "cancel") {
          status = "cancelled";
          error = decision.error;
          accepted = await settler.ack({ ...ref, status: "cancelled" });
        } else {
          status = "dead";
          error = decision.error;
          accepted = await settler.deadLetter({ ...ref, error });
        }
      }
    } catch (err) {
      this.#warn("TRANSPORT_UNAVAILABLE", `could not settle message ${message.id} (${toError(err).message}); it will be delivered again when its lease ends`, err);
      return;
    }
    if (!accepted) {
      status = "lease-lost";
      this.#host.events.emit("lease:lost", { id: message.id, task: message.name, channel: message.channel });
    } else if (message.headers.replyTo !== undefined && (status === "completed" || status === "cancelled" || status === "dead")) {
      const reply: ReplyPayload = { requestId: message.id, status };
      if (status === "completed" && result !== undefined) reply.result = result;
      if (error) reply.error = { code: error.code, message: error.message };
      try {
        await a.group.transport.send([replyEnvelope(message.headers.replyTo, reply, message.headers.correlationId, this.#host.now())]);
      } catch (err) {
        this.#warn("REPLY_FAILED", `could not send the reply for ${message.id} to ${message.headers.replyTo}: ${toError(err).message}`, err);
      }
    }
    if (status === "completed" || status === "cancelled") this.#completed++;
    else if (status !== "snoozed") this.#failed++;
    this.#report(a, status, payload, result, error, nextRunAt, now);
  }

  #report(a: Active, status: RunStatus, payload: unknown, result: unknown, error: RunReport["error"], nextRunAt: number | undefined, now: number): void {
    const onRun = this.#options.onRun;
    const events = this.#host.events;
    if (!onRun && !events.has("run")) return;
    const { message } = a.delivery;
    const report: RunReport = {
      status,
      channel: message.channel,
      id: message.id,
      task: message.name,
      params: payload,
      attempt: message.attempt,
      maxAttempts: message.maxAttempts,
      durationMs: now - a.startedAt,
      startedAt: a.startedAt,
      message: describe(status, message.name, message.attempt, message.maxAttempts, error?.message),
      correlationId: message.headers.correlationId,
    };
    if (error) report.error = error;
    if (status === "completed" && result !== undefined) report.result = result;
    if (nextRunAt !== undefined) report.nextRunAt = nextRunAt;
    if (onRun) {
      try {
        onRun(report);
      } catch (err) {
        this.#warn("LISTENER_FAILED", `onRun threw: ${toError(err).message}`, err);
      }
    }
    events.emit("run", report);
  }

  async #extendLeases(): Promise<void> {
    const now = this.#host.now();
    for (const g of this.#groups) {
      const due = [...this.#active.values()].filter((a) => a.group === g && !a.returned && a.delivery.leaseExpiresAt - now < (this.leaseMs * 2) / 3);
      if (due.length === 0) continue;
      try {
        const results = await g.transport.extend(due.map((a) => ({ id: a.delivery.message.id, token: a.delivery.token })), this.leaseMs);
        due.forEach((a, i) => {
          if (results[i]) a.delivery = { ...a.delivery, leaseExpiresAt: now + this.leaseMs };
          else if (!a.controller.aborted) {
            a.controller.abort(new FerryError("LEASE_LOST", `the lease on message ${a.delivery.message.id} was lost (another worker took it after it expired); this attempt's result will be refused`));
          }
        });
      } catch (err) {
        this.#warn("TRANSPORT_UNAVAILABLE", `lease heartbeat on ${g.transport.kind} failed: ${toError(err).message}`, err);
      }
    }
  }

  /**
   * Stop in stages: stop fetching, wait for running handlers up to the grace
   * period, abort the rest, give back what still runs (no attempt used), and
   * settle what finished. Safe to call twice.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#drain();
    return this.#stopping;
  }

  async #drain(): Promise<void> {
    if (this.#state === "idle") {
      this.#state = "stopped";
      return;
    }
    this.#state = "draining";
    this.#emitState();
    if (this.#signalHandler) {
      process.off("SIGTERM", this.#signalHandler);
      process.off("SIGINT", this.#signalHandler);
    }
    this.#stopFetch.abort();
    for (const w of this.#slotWaiters.splice(0)) w();
    await Promise.all(this.#groups.map((g) => g.loop));
    const running = () => Promise.all([...this.#active.values()].map((a) => a.done));
    await Promise.race([running(), new Promise((r) => setTimeout(r, this.graceMs).unref())]);
    if (this.#active.size > 0) {
      for (const a of this.#active.values()) a.controller.abort(SHUTDOWN);
      await Promise.race([running(), new Promise((r) => setTimeout(r, 200).unref())]);
      const left = [...this.#active.values()];
      for (const a of left) a.returned = true;
      await Promise.all(
        left.map((a) => a.group.settler.retry({ id: a.delivery.message.id, token: a.delivery.token, runAt: this.#host.now(), attemptUsed: false }).catch(() => false)),
      );
    }
    await Promise.all(this.#groups.map((g) => g.settler.drain()));
    clearInterval(this.#heartbeat);
    await this.#executor.close?.();
    this.#state = "stopped";
    this.#emitState();
  }
}

function describe(status: RunStatus, task: string, attempt: number, max: number, error: string | undefined): string {
  switch (status) {
    case "completed":
      return `${task} completed on attempt ${attempt}`;
    case "cancelled":
      return `${task} cancelled: ${error ?? ""}`;
    case "retrying":
      return `${task} failed on attempt ${attempt} of ${max}, will retry: ${error ?? ""}`;
    case "snoozed":
      return `${task} snoozed`;
    case "dead":
      return `${task} moved to the dead-letter store after attempt ${attempt} of ${max}: ${error ?? ""}`;
    case "lease-lost":
      return `${task} finished after its lease was lost; the result was refused`;
    default:
      return `${task} returned to the queue at shutdown`;
  }
}
