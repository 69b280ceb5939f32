/**
 * The typed event stream. Logs, metrics, SSE and tests all listen here; a
 * listener that throws is reported and never breaks the emitter.
 */
import type { AttemptError } from "../transport/types.ts";

/** Outcome of one run (one attempt of one message). */
export type RunStatus = "completed" | "cancelled" | "retrying" | "snoozed" | "dead" | "lease-lost" | "returned";

/**
 * The record of one run, with seed 002's callback fields (channel, id, task
 * name, params, duration, message).
 */
export interface RunReport {
  status: RunStatus;
  channel: string;
  /** Message id. */
  id: string;
  /** Task name. */
  task: string;
  /** The payload the handler received. */
  params: unknown;
  attempt: number;
  maxAttempts: number;
  /** Milliseconds from handler start to its outcome. */
  durationMs: number;
  startedAt: number;
  /** A one-line human summary of what happened. */
  message: string;
  correlationId: string | undefined;
  /** Present when the run failed. */
  error?: AttemptError;
  /** The handler's result, when completed. */
  result?: unknown;
  /** For `retrying` and `snoozed`: when the next attempt is due. */
  nextRunAt?: number;
  /** True when the run happened in the publisher's process (a sync subscription). */
  sync?: boolean;
}

/** One timed call across the transport seam. */
export interface TransportCall {
  transport: string;
  op: "send" | "receive" | "ack" | "retry" | "deadLetter" | "extend" | "close";
  /** How many messages the call carried or returned. */
  count: number;
  durationMs: number;
  error?: Error;
}

/** Every event Ferry emits, by name. */
export interface FerryEvents {
  run: RunReport;
  "run:start": { id: string; task: string; channel: string; attempt: number };
  "transport:call": TransportCall;
  dispatched: { id: string; task: string; channel: string; payload: unknown; deduplicated: boolean; runAt: number };
  published: { id: string; event: string; payload: unknown; messageIds: string[] };
  "lease:lost": { id: string; task: string; channel: string };
  warning: { code: string; message: string; error?: Error };
  "worker:state": { state: "starting" | "running" | "draining" | "stopped"; active: number };
  /** Live figures per executor process of a process pool, about once a second. */
  "pool:executors": { executors: Array<{ pid: number; tasksDone: number; rss: number; retiring: boolean; current: Array<{ task: string; id: string; ageMs: number }> }> };
}

type Listener<T> = (event: T) => void;

/** A small typed emitter whose listeners cannot hurt the emitter. */
export class EventStream<E extends { [K in keyof E]: unknown } = FerryEvents> {
  #listeners = new Map<keyof E, Set<Listener<never>>>();

  /** Listen to `name`; returns a function that stops listening. */
  on<K extends keyof E>(name: K, listener: Listener<E[K]>): () => void {
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(name, listener);
  }

  /** Stop listening. */
  off<K extends keyof E>(name: K, listener: Listener<E[K]>): void {
    this.#listeners.get(name)?.delete(listener as Listener<never>);
  }

  /** True when anyone listens to `name` (lets hot paths skip building events). */
  has(name: keyof E): boolean {
    return (this.#listeners.get(name)?.size ?? 0) > 0;
  }

  /** Deliver `event` to every listener of `name`; a throwing listener is reported on stderr. */
  emit<K extends keyof E>(name: K, event: E[K]): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    for (const listener of set) {
      try {
        (listener as Listener<E[K]>)(event);
      } catch (err) {
        process.emitWarning(`ferry: a listener of "${String(name)}" threw: ${(err as Error)?.message ?? String(err)}`, { code: "FERRY_LISTENER_ERROR" });
      }
    }
  }
}
