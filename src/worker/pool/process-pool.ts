/**
 * A pool of executor child processes (seed 004: a fetcher feeding N executors).
 * The worker process keeps the leases and settles every run; children only run
 * handler code. A handler that ignores its abort past timeout + grace has its
 * child killed and replaced; children are recycled after N tasks or past a
 * memory bound, between tasks; a crashed child costs its current attempts only.
 * A started spare takes a lost child's place at once; a message that killed or
 * hung a child runs its next attempts alone in a quarantine child.
 *
 * Why processes, not worker threads: a thread shares the process's heap limit
 * and cannot be killed without risk to the host once it blocks in native code;
 * `process.exit` in a thread handler would end the whole worker. A child process
 * contains all of these, at the cost of IPC (structured clone over a pipe).
 * The children are started by a helper thread (`executor-host.js`), because
 * `fork()` stops the thread that calls it for 5 to 20 ms here.
 */
import { getPriority, setPriority } from "node:os";
import { fileURLToPath } from "node:url";
import { parseDuration } from "../../core/duration.ts";
import { Snooze } from "../../core/control.ts";
import { FerryError } from "../../core/errors.ts";
import type { EventStream, FerryEvents } from "../../core/events.ts";
import { parseBytes, type ExecutorStats, type ProcessPoolOptions } from "./pool-options.ts";
import { checkInteger, checkOptionKeys } from "../../core/options.ts";
import type { TaskContext, TaskDefinition } from "../../bus/define.ts";
import type { Executor } from "../worker.ts";
import { ExecutorHost, type ExecutorHandle } from "./executor-handle.ts";
import { fromWireError, type FromChild, type ToChild } from "./protocol.ts";

interface InFlight {
  rid: number;
  task: string;
  id: string;
  startedAt: number;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  killTimer?: NodeJS.Timeout;
  /** The worker gave up on it (timeout, abort); the child still has it until it lets go or is killed. */
  abandoned?: boolean;
  /** Its message became a suspect only when it was abandoned (cleared if the handler lets go in time). */
  suspectOnAbort?: boolean;
}

interface Child {
  proc: ExecutorHandle;
  ready: Promise<void>;
  inFlight: Map<number, InFlight>;
  isReady: boolean;
  /** Runs handed to this child, counted from the moment it was picked (before it is ready). */
  load: number;
  tasksDone: number;
  rss: number;
  retiring: boolean;
  exited: boolean;
  /** The quarantine executor: runs only messages that already killed or hung an executor here. */
  quarantine: boolean;
  /** Started and kept idle until a regular executor is needed. */
  spare: boolean;
}

/** How long an aborted handler may take to let go before its executor is replaced (it is killed only after killGrace). */
const LET_GO_MS = 100;
/** How many nice steps below the pool a child starts (until it is ready), so its start-up yields to running handlers. */
const START_NICE = 10;
/** Message ids remembered as suspects. */
const MAX_SUSPECTS = 10_000;
/** Wait before replacing a quarantine executor that died with nothing to run. */
const QUARANTINE_RESPAWN_MS = 1000;
/** How long a suspect run waits in the queue (no attempt used) when the quarantine executor is busy or starting. */
const QUARANTINE_WAIT_MS = 1000;
const OPTIONS = ["app", "processes", "spares", "perProcess", "maxTasks", "maxMemory", "killGrace", "execArgv", "events"] as const;
const CHILD = fileURLToPath(new URL("./executor-child.ts", import.meta.url));
/** The TypeScript loader the children start with, resolved from here so any working directory works. */
const TSX = import.meta.resolve("tsx");


/** Runs handlers in child processes; pass it as a worker's `executor`. */
export class ProcessPool implements Executor {
  readonly processes: number;
  readonly spares: number;
  readonly perProcess: number;
  readonly maxTasks: number;
  readonly maxMemory: number;
  readonly killGraceMs: number;
  #options: ProcessPoolOptions;
  #children = new Set<Child>();
  #rid = 0;
  #closed = false;
  #recentCrashes: number[] = [];
  #slotWaiters: Array<() => void> = [];
  /** Messages whose run killed or hung an executor, oldest first (at most MAX_SUSPECTS). */
  #suspects = new Set<string>();
  #quarantine: Child | undefined;
  #quarantineAfter = 0;
  /** No child is started before this time (crash-loop backoff). */
  #spawnAfter = 0;
  #refillTimer: NodeJS.Timeout | undefined;
  /** Children started in all, replacements included. */
  spawned = 0;
  #figures: NodeJS.Timeout | undefined;
  /** The thread that starts the children (see executor-host.js); made with the first child. */
  #host: ExecutorHost | undefined;
  /** False once raising a child's priority back was refused. */
  #canRenice = true;

  /** Report warnings and per-executor figures (`pool:executors`, once a second) on a Ferry's event stream. */
  attach(events: EventStream<FerryEvents>): void {
    this.#options.events ??= events;
    clearInterval(this.#figures);
    this.#figures = setInterval(() => {
      if (events.has("pool:executors")) events.emit("pool:executors", { executors: this.stats() });
    }, 1000);
    this.#figures.unref();
  }

  constructor(options: ProcessPoolOptions) {
    checkOptionKeys(options, OPTIONS, "process pool");
    if (typeof options?.app !== "string" || options.app.length === 0) throw new FerryError("INVALID_OPTION", "process pool needs app: the path of the module exporting your Ferry", { details: { option: "app" } });
    this.#options = options;
    this.processes = checkInteger(options.processes ?? 2, "processes", 1, 256);
    this.spares = checkInteger(options.spares ?? 1, "spares", 0, 256);
    this.perProcess = checkInteger(options.perProcess ?? 1, "perProcess", 1, 10_000);
    this.maxTasks = options.maxTasks === undefined ? Infinity : checkInteger(options.maxTasks, "maxTasks", 1, Number.MAX_SAFE_INTEGER);
    this.maxMemory = options.maxMemory === undefined ? Infinity : parseBytes(options.maxMemory);
    this.killGraceMs = parseDuration(options.killGrace ?? "5s", "killGrace");
    this.#refill();
  }

  #spawn(quarantine = false): Child {
    this.#host ??= new ExecutorHost();
    const lowered = this.#canRenice;
    const proc = this.#host.spawn(CHILD, ["--import", TSX, ...(this.#options.execArgv ?? [])], { ...process.env, FERRY_POOL_APP: this.#options.app }, lowered ? Math.min(19, getPriority() + START_NICE) : undefined);
    this.spawned++;
    let ready!: () => void;
    let failed!: (e: Error) => void;
    const child: Child = { proc, ready: new Promise<void>((res, rej) => ((ready = res), (failed = rej))), inFlight: new Map(), isReady: false, load: 0, tasksDone: 0, rss: 0, retiring: false, exited: false, quarantine, spare: !quarantine };
    child.ready.catch(() => undefined);
    proc.on("message", (m: FromChild) => {
      if (m.type === "ready") {
        if (lowered) this.#restorePriority(child);
        child.isReady = true;
        ready();
        this.#refill();
      } else if (m.type === "fatal") failed(new FerryError("CONFIG_INVALID", m.message));
      else if (m.type === "warning") this.#warn(m.code, `executor ${child.proc.pid}: ${m.message}`);
      else if (m.type === "result") this.#onResult(child, m);
    });
    proc.on("exit", (code, signal) => this.#onExit(child, code, signal, failed));
    proc.on("error", (err) => this.#warn("EXECUTOR_ERROR", `executor ${child.proc.pid}: ${err.message}`));
    this.#children.add(child);
    return child;
  }

  /** A child starts below the pool's CPU priority (its start-up yields to running handlers) and gets it back once ready. */
  #restorePriority(child: Child): void {
    try {
      setPriority(child.proc.pid, getPriority());
    } catch {
      // Raising a priority back needs CAP_SYS_NICE (or RLIMIT_NICE): without it, children start at normal priority.
      this.#canRenice = false;
      this.#warn("EXECUTOR_PRIORITY", `executor ${child.proc.pid} keeps its lower start-up CPU priority: this process may not raise it back; later executors start at normal priority`);
    }
  }

  #warn(code: string, message: string): void {
    const events = this.#options.events;
    if (events?.has("warning")) events.emit("warning", { code, message });
    else process.emitWarning(`ferry pool: ${message}`, { code: `FERRY_${code}` });
  }

  #onResult(child: Child, m: Extract<FromChild, { type: "result" }>): void {
    const job = child.inFlight.get(m.rid);
    child.rss = m.rss;
    if (!job) return; // already given up on (timed out or aborted)
    child.inFlight.delete(m.rid);
    // It let go after its abort: its next attempt may run on a regular executor again.
    if (job.suspectOnAbort && !child.retiring) this.#suspects.delete(job.id);
    clearTimeout(job.killTimer);
    child.tasksDone++;
    if (m.ok) job.resolve(m.result);
    else job.reject(fromWireError(m.error ?? { name: "Error", message: "unknown failure" }));
    this.#maybeRetire(child);
    this.#wakeSlots();
  }

  /** Take `child` out of rotation and start its replacement at once; it leaves when it has nothing in flight (or is killed). */
  #retire(child: Child): void {
    if (child.retiring || child.exited) return;
    child.retiring = true;
    if (child.quarantine) this.#quarantine = undefined; // the next suspect starts a new one
    else this.#refill();
  }

  #maybeRetire(child: Child): void {
    if (child.tasksDone >= this.maxTasks || child.rss > this.maxMemory) this.#retire(child);
    if (child.retiring && child.inFlight.size === 0 && child.load === 0 && !child.exited && child.proc.connected) child.proc.disconnect();
  }

  #onExit(child: Child, code: number | null, signal: NodeJS.Signals | null, failed: (e: Error) => void): void {
    child.exited = true;
    // A child that dies while running a handler is that handler's doing: the attempt is used and the
    // retry policy bounds how often it happens. One that dies with nothing to run (before it was
    // ready, or idle) points at the app or the host: a loop of those backs off.
    const idle = child.inFlight.size === 0;
    this.#children.delete(child);
    if (this.#quarantine === child) this.#quarantine = undefined;
    if (child.quarantine && idle && !this.#closed) {
      // It died with nothing to run (the app failed to load?): wait before starting another.
      this.#quarantineAfter = Date.now() + QUARANTINE_RESPAWN_MS;
      setTimeout(() => this.#wakeSlots(), QUARANTINE_RESPAWN_MS).unref();
    }
    for (const job of child.inFlight.values()) this.#suspect(job.id);
    failed(new FerryError("WORKER_CRASHED", `executor ${child.proc.pid} exited before it was ready (code ${code}, signal ${signal})`));
    for (const job of child.inFlight.values()) {
      clearTimeout(job.killTimer);
      job.reject(new FerryError("WORKER_CRASHED", `the executor process running "${job.task}" died (exit code ${code}, signal ${signal}): the handler crashed it, ran out of memory, or was killed past its timeout`));
    }
    child.inFlight.clear();
    if (this.#closed) return;
    if (idle && !child.retiring && !child.quarantine) {
      const now = Date.now();
      this.#recentCrashes = this.#recentCrashes.filter((t) => now - t < 10_000);
      this.#recentCrashes.push(now);
      // A crash loop backs off instead of forking as fast as the children can die.
      const delay = this.#recentCrashes.length > (this.processes + this.spares) * 3 ? Math.min(5000, 100 * this.#recentCrashes.length) : 0;
      this.#spawnAfter = now + delay;
    }
    this.#refill();
  }

  /**
   * Keep `processes` regular executors and `spares` idle ones: promote ready spares into
   * missing regular places, then start spares for what is missing (every new child starts
   * as a spare and is promoted once ready, so no run ever waits for a child's start-up).
   */
  #refill(): void {
    if (this.#closed) return;
    const spares = [...this.#children].filter((c) => c.spare && !c.exited);
    let missing = this.processes - this.#live().length;
    for (const c of spares) {
      if (missing > 0 && c.isReady) {
        c.spare = false;
        missing--;
      }
    }
    const wait = this.#spawnAfter - Date.now();
    if (wait > 0) {
      clearTimeout(this.#refillTimer);
      this.#refillTimer = setTimeout(() => this.#refill(), wait);
      this.#refillTimer.unref();
    } else {
      const have = this.#live().length + spares.filter((c) => c.spare).length;
      for (let i = have; i < this.processes + this.spares; i++) this.#spawn();
    }
    this.#wakeSlots();
  }

  #live(): Child[] {
    return [...this.#children].filter((c) => !c.retiring && !c.exited && !c.quarantine && !c.spare);
  }

  /** Remember a message whose run killed or hung an executor: its next attempts go to quarantine. */
  #suspect(id: string): void {
    this.#suspects.delete(id);
    this.#suspects.add(id);
    if (this.#suspects.size > MAX_SUSPECTS) this.#suspects.delete(this.#suspects.values().next().value!);
  }

  #wakeSlots(): void {
    for (const w of this.#slotWaiters.splice(0)) w();
  }

  async #pick(signal: AbortSignal, id: string): Promise<Child> {
    for (;;) {
      if (this.#closed) throw new FerryError("ABORTED", "the process pool is closed");
      if (signal.aborted) throw signal.reason;
      let best: Child | undefined;
      // A child still holding an abandoned handler counts it: it may be killed any moment.
      const busy = (c: Child) => c.load + [...c.inFlight.values()].filter((j) => j.abandoned).length;
      if (this.#suspects.has(id)) {
        // A message that already killed or hung an executor runs alone in the quarantine
        // executor, so its next attempts cannot take a regular executor (and its runs) down.
        // While the quarantine is busy or starting, the run goes back to the queue without using
        // an attempt, rather than holding one of the worker's slots while it waits.
        if (!this.#quarantine && Date.now() >= this.#quarantineAfter) this.#quarantine = this.#spawn(true);
        const q = this.#quarantine;
        if (!q?.isReady || busy(q) > 0) throw new Snooze(QUARANTINE_WAIT_MS, `message ${id} already killed or hung an executor; it waits for the quarantine executor`);
        q.load++;
        return q;
      } else {
        // Only ready children: a run bound to one still starting would wait for its boot while another frees up.
        for (const c of this.#live()) if (c.isReady && busy(c) < this.perProcess && (!best || busy(c) < busy(best))) best = c;
      }
      if (best) {
        best.load++;
        return best;
      }
      await new Promise<void>((r) => {
        const wake = () => {
          signal.removeEventListener("abort", wake);
          r();
        };
        this.#slotWaiters.push(wake);
        signal.addEventListener("abort", wake, { once: true });
      });
    }
  }

  async run(task: TaskDefinition, payload: unknown, ctx: TaskContext, controller: AbortController): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    let child: Child | undefined;
    try {
      child = await this.#pick(controller.signal, ctx.id);
      const picked = child;
      // The timeout is the handler's: it starts when an executor takes the run, not while the run waits for one.
      timer = setTimeout(() => controller.abort(new FerryError("TIMEOUT", `task "${task.name}" ran past its timeout of ${task.timeoutMs} ms`)), task.timeoutMs);
      const rid = ++this.#rid;
      return await new Promise<unknown>((resolve, reject) => {
        const job: InFlight = { rid, task: task.name, id: ctx.id, startedAt: Date.now(), resolve, reject };
        picked.inFlight.set(rid, job);
        const onAbort = () => {
          const reason = controller.signal.reason as Error;
          const code = reason instanceof FerryError ? reason.code : "ABORTED";
          if (picked.proc.connected) picked.proc.send({ type: "abort", rid, code, message: reason?.message ?? "aborted" } satisfies ToChild);
          reject(reason);
          // The attempt is over for the worker; the child gets killGrace to let go of it.
          job.resolve = job.reject = () => undefined;
          job.abandoned = true;
          // Until it lets go it is a suspect: a retry arriving before LET_GO_MS must not go to a regular executor.
          if (!this.#suspects.has(ctx.id)) {
            job.suspectOnAbort = true;
            this.#suspect(ctx.id);
          }
          // A handler that honours its abort lets go within a turn or two. One still running after
          // LET_GO_MS is likely to hang: its executor leaves the rotation and a replacement starts
          // now, so the pool is not a process short for the whole kill grace.
          const letGo = setTimeout(() => {
            if (picked.inFlight.has(rid)) this.#retire(picked);
          }, Math.min(LET_GO_MS, this.killGraceMs));
          letGo.unref();
          job.killTimer = setTimeout(() => {
            if (picked.inFlight.has(rid) && !picked.exited) {
              this.#warn("EXECUTOR_KILLED", `executor ${picked.proc.pid} ignored the abort of "${task.name}" (${ctx.id}) for ${this.killGraceMs} ms; killing it`);
              picked.proc.kill("SIGKILL");
            }
          }, this.killGraceMs);
          job.killTimer.unref();
        };
        if (controller.signal.aborted) return onAbort();
        controller.signal.addEventListener("abort", onAbort, { once: true });
        const ctxWire = { id: ctx.id, channel: ctx.channel, attempt: ctx.attempt, maxAttempts: ctx.maxAttempts, headers: { ...ctx.headers } };
        // A child that cannot take the run is killed by the host, and its exit fails the run.
        if (!picked.proc.send({ type: "run", rid, task: task.name, payload, ctx: ctxWire } satisfies ToChild) && picked.inFlight.delete(rid)) {
          reject(new FerryError("WORKER_CRASHED", `could not hand "${task.name}" to executor ${picked.proc.pid}: it is gone`));
        }
      });
    } finally {
      clearTimeout(timer);
      if (child) {
        child.load--;
        this.#maybeRetire(child);
        this.#wakeSlots();
      }
    }
  }

  /** Live figures per executor. */
  stats(): ExecutorStats[] {
    const now = Date.now();
    return [...this.#children].map((c) => ({
      pid: c.proc.pid,
      tasksDone: c.tasksDone,
      rss: c.rss,
      retiring: c.retiring,
      load: c.load,
      ready: c.isReady,
      role: c.quarantine ? "quarantine" : c.spare ? "spare" : "regular",
      current: [...c.inFlight.values()].map((j) => ({ task: j.task, id: j.id, ageMs: now - j.startedAt })),
    }));
  }

  /** Wait until every child has loaded the app. */
  async ready(): Promise<void> {
    await Promise.all([...this.#children].map((c) => c.ready));
  }

  /** Stop every child: gracefully (disconnect), then SIGKILL after the grace period. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#figures);
    clearTimeout(this.#refillTimer);
    this.#wakeSlots();
    await Promise.all(
      [...this.#children].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exited) return resolve();
            const kill = setTimeout(() => c.proc.kill("SIGKILL"), this.killGraceMs);
            c.proc.once("exit", () => {
              clearTimeout(kill);
              resolve();
            });
            if (c.proc.connected) c.proc.disconnect();
            else c.proc.kill("SIGTERM");
          }),
      ),
    );
    await this.#host?.close();
  }
}
