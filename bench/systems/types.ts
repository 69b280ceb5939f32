/**
 * The primitives every benchmarked system provides. Scenarios (bench/scenarios/)
 * hold all the timing code; a system only knows how to enqueue, run a worker and
 * clean up after itself, so Ferry and each peer are measured by the same code.
 *
 * Glossary:
 * - **system**: one library with one set of settings (`bullmq`, `graphile-worker-batched`,
 *   `raw-redis`, `ferry-sqlite`, ...). The same library may appear twice with different settings.
 * - **namespace**: a unique lowercase name per measurement (`fb_k3x9_12`). A system puts every
 *   key, schema, queue and file it creates under it, so runs never touch anyone else's data and
 *   {@link SystemFactory.cleanup} can remove everything from a crashed run.
 * - **payload**: the JSON object a task carries; {@link BenchPayload}.
 */

/** The server a system needs; `sqlite` means an in-process file under `.bench-tmp/`. */
export type ServerKind = "redis" | "postgres" | "amqp" | "sqlite";

/** The payload every benchmark task carries. */
export interface BenchPayload {
  /** Index of the task within its scenario. */
  i: number;
  /** When it was enqueued (ms since the epoch, producer's clock). */
  t: number;
  /** When it is due (delayed scenario only; ms since the epoch). */
  due?: number;
  /** Padding up to the configured payload size. */
  pad: string;
}

/** A handler the scenario gives to a worker; may return a promise. */
export type BenchHandler = (payload: BenchPayload) => void | Promise<void>;

/** A running worker. */
export interface RunningWorker {
  /** Stop fetching and wait for the in-flight handlers (bounded by the system's own grace). */
  stop(): Promise<void>;
}

/** Options of {@link BenchSystem.startWorker}. */
export interface WorkerOptions {
  /** Handlers in flight at most. */
  concurrency: number;
}

/** One connected instance of a system, inside one namespace. */
export interface BenchSystem {
  /** Enqueue one task and wait until the system acknowledges it. */
  enqueueOne(payload: BenchPayload): Promise<void>;
  /** Enqueue many tasks the fastest way the system offers (its bulk API); resolves when all are stored. */
  enqueueBulk(payloads: readonly BenchPayload[]): Promise<void>;
  /**
   * Enqueue one task due after `delayMs`. Absent when the system has no delayed delivery
   * (the delayed scenario then reports the system as not applicable).
   */
  enqueueDelayed?(payload: BenchPayload, delayMs: number): Promise<void>;
  /** Start a worker that calls `handler` for each task. Resolves once it is fetching. */
  startWorker(options: WorkerOptions, handler: BenchHandler): Promise<RunningWorker>;
  /**
   * Take (receive and complete) up to `max` tasks in one operation and return how many
   * were taken. Only the backlog scenario uses it; absent for the peers, whose public
   * APIs have no such call.
   */
  takeBatch?(max: number): Promise<number>;
  /** Close every connection and delete everything created in this namespace. */
  teardown(): Promise<void>;
}

/** What the harness knows about a system before connecting to it. */
export interface SystemFactory {
  /** Unique name, used with `--systems`. */
  name: string;
  /** The library this measures (package name, or `ferry`). */
  library: string;
  /** The server it needs; the harness skips the system when that server is down. */
  server: ServerKind;
  /** True for the raw-client limits (not a job system). */
  raw?: boolean;
  /** True for Ferry's own systems (the numerators of the Ferry/peer ratios). */
  ferry?: boolean;
  /** The settings used, in words, for the report (state the defaults relied on). */
  settings: string;
  /** Why the system cannot run here, or undefined when it can (e.g. Ferry's API not written yet). */
  unavailable?(): Promise<string | undefined>;
  /** Connect and create what is needed (queues, schema, tables) in `namespace`. */
  create(namespace: string): Promise<BenchSystem>;
  /** Remove everything a crashed run may have left in `namespace`, without `create` having succeeded. */
  cleanup(namespace: string): Promise<void>;
}
