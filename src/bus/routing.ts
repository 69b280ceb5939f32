/**
 * Routing of events to the tasks subscribed to them, by exact name or by an
 * AMQP-style topic pattern (`order.*.paid`, `audit.#`).
 */
import { compilePattern, isPattern } from "../core/names.ts";
import type { TaskDefinition } from "./define.ts";

/** One subscription of a task to an event name or pattern. */
export interface Subscription {
  /** The event name or pattern subscribed to. */
  pattern: string;
  task: TaskDefinition;
  /** The channel for async delivery; undefined for a sync subscription. */
  channel: string | undefined;
  /** Delay before the task is due, ms. */
  delayMs: number;
  /** Turns the event payload into the task payload. Default: unchanged. */
  map: ((payload: unknown) => unknown) | undefined;
}

/** Subscriptions, with a per-name cache of matches. */
export class Router {
  #exact = new Map<string, Subscription[]>();
  #patterns: Array<{ sub: Subscription; test: (name: string) => boolean }> = [];
  #cache = new Map<string, Subscription[]>();

  add(sub: Subscription): void {
    if (isPattern(sub.pattern)) this.#patterns.push({ sub, test: compilePattern(sub.pattern) });
    else {
      const list = this.#exact.get(sub.pattern) ?? [];
      list.push(sub);
      this.#exact.set(sub.pattern, list);
    }
    this.#cache.clear();
  }

  /** Every subscription matching an event name, in the order they were added. */
  match(name: string): Subscription[] {
    let found = this.#cache.get(name);
    if (found) return found;
    found = [...(this.#exact.get(name) ?? []), ...this.#patterns.filter((p) => p.test(name)).map((p) => p.sub)];
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(name, found);
    return found;
  }

  /** All subscriptions. */
  all(): Subscription[] {
    return [...[...this.#exact.values()].flat(), ...this.#patterns.map((p) => p.sub)];
  }
}
