/**
 * A Ferry for tests: an in-memory transport on a virtual clock, a `drain()`
 * that runs a real worker until nothing is due, and records of what was
 * dispatched, published and run.
 */
import { Ferry, type FerryOptions } from "../bus/ferry.ts";
import type { EventDefinition, InputOf, ResultOf, TaskContext, TaskDefinition } from "../bus/define.ts";
import { VirtualClock } from "../core/clock.ts";
import { parseDuration, type Duration } from "../core/duration.ts";
import { newId } from "../core/envelope.ts";
import { FerryError } from "../core/errors.ts";
import type { FerryEvents, RunReport } from "../core/events.ts";
import { validatePayload } from "../core/schema.ts";
import { MemoryTransport } from "../transport/memory/memory-transport.ts";
import { runHandler } from "../worker/outcome.ts";

/** Options of {@link createTestFerry}. */
export interface TestFerryOptions extends Omit<FerryOptions, "transport" | "channels" | "clock"> {
  /** Where the virtual clock starts, ms since the epoch. Default: the real now. */
  start?: number;
}

/** Options of {@link TestFerry.drain}. */
export interface DrainOptions {
  /**
   * When nothing is due, move the virtual clock to the next delayed message
   * (a delay, a retry's backoff, a snooze) and keep going until nothing is left.
   * Default false: only what is due now runs.
   */
  advance?: boolean;
  /** Give up (throw `TIMEOUT`) after this many runs in one drain, e.g. a task that reschedules itself forever. Default 1000. */
  maxRuns?: number;
  /** Worker concurrency during the drain. Default 10. */
  concurrency?: number;
}

/** One recorded dispatch (every task message sent, fan-out included). */
export type DispatchedRecord = FerryEvents["dispatched"];
/** One recorded publish. */
export type PublishedRecord = FerryEvents["published"];

const INBOX_PREFIX = "_reply.";
const nameOf = (x: { name: string } | string | undefined): string | undefined => (typeof x === "object" ? x.name : x);


/** A Ferry on a {@link MemoryTransport} with a {@link VirtualClock}, plus test helpers. */
export class TestFerry extends Ferry {
  /** The virtual clock shared by the Ferry and its transport. */
  declare readonly clock: VirtualClock;
  /** The in-memory transport every channel uses (inspect it with `get`, `list`, `counts`). */
  readonly memory: MemoryTransport;
  /** Every run reported so far (worker and sync subscribers), oldest first. */
  readonly runs: RunReport[] = [];
  #dispatched: DispatchedRecord[] = [];
  #published: PublishedRecord[] = [];

  constructor(options: TestFerryOptions = {}) {
    const { start, ...rest } = options;
    const clock = new VirtualClock(start ?? Date.now());
    const memory = new MemoryTransport({ clock, name: "test" });
    super({ ...rest, transport: memory, clock });
    this.memory = memory;
    this.events.on("run", (r) => this.runs.push(r));
    this.events.on("dispatched", (d) => this.#dispatched.push(d));
    this.events.on("published", (p) => this.#published.push(p));
  }

  /** Task messages sent so far, of one task (definition or name) or all. */
  dispatched(task?: TaskDefinition | string): DispatchedRecord[] {
    const name = nameOf(task);
    return this.#dispatched.filter((d) => name === undefined || d.task === name);
  }

  /** Events published so far, of one event (definition or name) or all. */
  published(event?: EventDefinition | string): PublishedRecord[] {
    const name = nameOf(event);
    return this.#published.filter((p) => name === undefined || p.event === name);
  }

  /** Forget the recorded runs, dispatches and publishes (messages stay in the transport). */
  clearRecords(): void {
    this.runs.length = 0;
    this.#dispatched = [];
    this.#published = [];
  }

  /** Move the virtual clock forward by `by` (ms or `"5m"`), waking whatever sleeps until then. */
  async advance(by: Duration): Promise<void> {
    await this.clock.advance(parseDuration(by, "advance"));
  }

  /**
   * Run a real worker until no message is due and no `request()` waits for its
   * reply (and, with `advance`, until no message is left at all, moving the
   * virtual clock to each next due time). Returns the runs of this drain.
   * @throws FerryError `TIMEOUT` past `maxRuns`
   */
  async drain(options: DrainOptions = {}): Promise<RunReport[]> {
    const first = this.runs.length;
    const maxRuns = options.maxRuns ?? 1000;
    let channels: string[] = [];
    let worker: ReturnType<Ferry["worker"]> | undefined;
    // Let calls started just before (a request() or publish() not yet awaited) get as far as sending.
    await new Promise((r) => setImmediate(r));
    try {
      for (;;) {
        const now = this.clock.now();
        const counts = (await this.memory.counts()).filter((c) => !c.channel.startsWith(INBOX_PREFIX));
        const wanted = [...new Set([...this.channels(), ...counts.filter((c) => c.waiting + c.active > 0).map((c) => c.channel)])].sort();
        if (wanted.join() !== channels.join() && counts.some((c) => c.waiting + c.active > 0)) {
          // A channel with work appeared (a dispatch by name, a new subscription): restart on the full set.
          await worker?.stop();
          channels = wanted;
          worker = this.worker({ channels, concurrency: options.concurrency ?? 10 });
          await worker.start();
        }
        if (this.runs.length - first > maxRuns) {
          throw new FerryError("TIMEOUT", `drain ran ${maxRuns} runs and work is still due; a task may reschedule itself forever (raise maxRuns if this is expected)`);
        }
        // A request() in flight is busy too: its message may not be sent yet, or its reply not read.
        const busy = counts.some((c) => c.active > 0 || c.waiting - c.delayed > 0) || (await this.requestStats()).pending > 0;
        if (busy) {
          await new Promise((r) => setTimeout(r, 1));
          continue;
        }
        if (!options.advance) break;
        const next = await this.#nextDue(now);
        if (next === undefined) break;
        await this.clock.advance(next - now);
      }
    } finally {
      await worker?.stop();
    }
    return this.runs.slice(first);
  }

  async #nextDue(now: number): Promise<number | undefined> {
    let next: number | undefined;
    for (let offset = 0; ; offset += 1000) {
      const page = await this.memory.list({ state: "waiting", limit: 1000, offset });
      for (const r of page) {
        if (r.message.channel.startsWith(INBOX_PREFIX)) continue;
        if (r.message.runAt > now && (next === undefined || r.message.runAt < next)) next = r.message.runAt;
      }
      if (page.length < 1000) return next;
    }
  }

  /**
   * Run one task's handler directly, with a fake context, its payload validated
   * and its timeout applied; no transport involved. Resolves with the result;
   * rejects with what the handler threw (`RetryLater`, `Cancel`, ...).
   * @throws FerryError `INVALID_PAYLOAD`
   */
  async runTask<T extends TaskDefinition>(task: T, payload: InputOf<T>, context: Partial<Omit<TaskContext, "task">> = {}): Promise<ResultOf<T>> {
    if (task?.kind !== "task") throw new FerryError("INVALID_OPTION", "runTask takes a task made by defineTask()");
    const valid = await validatePayload(task.schema, payload, `payload of "${task.name}"`);
    const controller = new AbortController();
    if (context.signal) {
      const outer = context.signal;
      if (outer.aborted) controller.abort(outer.reason);
      else outer.addEventListener("abort", () => controller.abort(outer.reason), { once: true });
    }
    const ctx: TaskContext = {
      id: context.id ?? newId(this.clock.now()),
      task: task.name,
      channel: context.channel ?? this.channelOf(task),
      attempt: context.attempt ?? 1,
      maxAttempts: context.maxAttempts ?? task.retry.attempts,
      headers: context.headers ?? {},
      signal: controller.signal,
      sync: context.sync ?? false,
    };
    return (await runHandler(task, valid, ctx, controller)) as ResultOf<T>;
  }
}

/**
 * Create a {@link TestFerry}: every channel on one in-memory transport, time on a
 * virtual clock that moves only when told (`advance()`, `drain({ advance: true })`).
 */
export function createTestFerry(options: TestFerryOptions = {}): TestFerry {
  return new TestFerry(options);
}
