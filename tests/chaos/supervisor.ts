/**
 * The supervisor: forks chaos worker processes, restarts any that die (killed
 * on purpose or crashed by a fault), kills a random one on request, and counts
 * what happened.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import type { WorkerProcessConfig, WorkerProcessReport } from "./worker-process.ts";

const WORKER = new URL("./worker-process.ts", import.meta.url);

/** One supervised worker slot. */
export interface SlotSpec {
  config: WorkerProcessConfig;
  /** `--max-old-space-size` in MB for this process. Default: Node's own. */
  heapMb?: number;
}

/** What the supervisor saw. */
export interface SupervisorStats {
  /** SIGKILLs sent on purpose. */
  kills: number;
  /** Exits not caused by our SIGKILL or stop (a fault crashed the process). */
  crashes: number;
  /** Processes started after the first ones. */
  restarts: number;
  /** Exit codes / signals of crashes, counted. */
  crashReasons: Record<string, number>;
  /** Warnings reported by workers, by code. */
  warnings: Record<string, number>;
  /** Unhandled rejections caught by the process-level guard. */
  rejections: number;
  /** Completions refused because the lease was lost (fencing), reported by workers. */
  leaseLost: number;
  /** Milliseconds from fork to `ready`, per start (the worker connected and began taking work). */
  startupMs: number[];
  /** Executor processes started by the workers' process pools, replacements included (reported at stop). */
  executorsSpawned: number;
  /** The first crashes' reasons with the last lines the process (and its executors) wrote to stderr. */
  crashLogs: Array<{ reason: string; stderr: string[] }>;
}

/** Lines of stderr kept per worker process for the crash log. */
const TAIL_LINES = 80;

interface Slot {
  spec: SlotSpec;
  child?: ChildProcess;
  killedOnPurpose: boolean;
  ready: boolean;
}

/** Runs and restarts a set of worker processes. */
export class Supervisor {
  readonly stats: SupervisorStats = { kills: 0, crashes: 0, restarts: 0, crashReasons: {}, warnings: {}, rejections: 0, leaseLost: 0, startupMs: [], executorsSpawned: 0, crashLogs: [] };
  readonly #slots: Slot[];
  readonly #verbose: boolean;
  #stopping = false;
  #started = 0;

  constructor(specs: SlotSpec[], options: { verbose?: boolean } = {}) {
    this.#slots = specs.map((spec) => ({ spec, killedOnPurpose: false, ready: false }));
    this.#verbose = options.verbose ?? false;
  }

  /** Start every slot and wait until each worker reports ready. */
  async start(): Promise<void> {
    await Promise.all(this.#slots.map((s) => this.#spawn(s)));
  }

  #spawn(slot: Slot): Promise<void> {
    const execArgv = ["--import", "tsx"];
    if (slot.spec.heapMb) execArgv.push(`--max-old-space-size=${slot.spec.heapMb}`);
    const child = fork(WORKER, [JSON.stringify(slot.spec.config)], { execArgv, stdio: ["ignore", "ignore", "pipe", "ipc"] });
    const tail: string[] = [];
    child.stderr!.setEncoding("utf8").on("data", (text: string) => {
      if (this.#verbose) process.stderr.write(text);
      tail.push(...text.split("\n").filter((l) => l.length > 0));
      if (tail.length > TAIL_LINES) tail.splice(0, tail.length - TAIL_LINES);
    });
    if (this.#started++ >= this.#slots.length) this.stats.restarts++;
    slot.child = child;
    slot.killedOnPurpose = false;
    slot.ready = false;
    const forkedAt = Date.now();
    const ready = new Promise<void>((resolve) => {
      child.on("message", (r: WorkerProcessReport) => {
        if (r.type === "ready") {
          slot.ready = true;
          this.stats.startupMs.push(Date.now() - forkedAt);
          if (this.#verbose) console.error(`[worker ${child.pid}] ready after ${Date.now() - forkedAt} ms (boot ${r.bootMs} ms, worker.start ${r.startMs} ms)`);
          resolve();
        } else if (r.type === "warning") {
          this.stats.warnings[r.code] = (this.stats.warnings[r.code] ?? 0) + 1;
          if (this.#verbose) console.error(`[worker ${child.pid}] ${r.code}: ${r.message}`);
        } else if (r.type === "rejection") this.stats.rejections++;
        else if (r.type === "lease-lost") this.stats.leaseLost++;
        else if (r.type === "pool") this.stats.executorsSpawned += r.spawned;
      });
      child.once("exit", () => resolve());
    });
    child.once("exit", (code, signal) => {
      if (slot.child !== child) return;
      slot.child = undefined;
      if (this.#stopping) return;
      if (!slot.killedOnPurpose) {
        this.stats.crashes++;
        const reason = signal ?? `exit ${code}`;
        this.stats.crashReasons[reason] = (this.stats.crashReasons[reason] ?? 0) + 1;
        if (this.stats.crashLogs.length < 5) this.stats.crashLogs.push({ reason, stderr: tail }); // still filled until the pipe closes
      }
      void this.#spawn(slot);
    });
    return ready;
  }

  /** Worker processes alive now. */
  get alive(): number {
    return this.#slots.filter((s) => s.child).length;
  }

  /** The pid of the process in slot `index` now, if one is running. */
  pid(index: number): number | undefined {
    return this.#slots[index]?.child?.pid;
  }

  /** SIGKILL one random live, ready worker (it is restarted at once). Returns its pid. */
  killRandom(): number | undefined {
    const live = this.#slots.filter((s) => s.child && s.ready);
    if (live.length === 0) return undefined;
    const slot = live[Math.floor(Math.random() * live.length)]!;
    slot.killedOnPurpose = true;
    const pid = slot.child!.pid;
    slot.child!.kill("SIGKILL");
    this.stats.kills++;
    return pid;
  }

  /** Stop every worker: SIGTERM (graceful), SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.#slots.map(async (s) => {
        const child = s.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, "exit");
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}
