/**
 * Defining work: tasks (a handler with a schema, retry policy and timeout) and
 * events (a named fact with a schema).
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { parseDuration, type Duration } from "../core/duration.ts";
import type { MessageHeaders } from "../core/envelope.ts";
import { FerryError } from "../core/errors.ts";
import { assertChannel, assertName } from "../core/names.ts";
import { retryPolicy, type RetryOptions, type RetryPolicy } from "../core/retry-policy.ts";
import { isStandardSchema } from "../core/schema.ts";

/** What a handler gets besides its payload. */
export interface TaskContext {
  /** Message id. */
  id: string;
  /** Task name. */
  task: string;
  channel: string;
  /** This attempt's number, 1 on the first run. */
  attempt: number;
  maxAttempts: number;
  headers: Readonly<MessageHeaders>;
  /** Aborted on timeout, lost lease or shutdown; pass it to fetch, timers, child processes. */
  signal: AbortSignal;
  /** True when running in the publisher's process (a sync subscription). */
  sync: boolean;
}

type AnySchema = StandardSchemaV1;
type In<S> = S extends AnySchema ? StandardSchemaV1.InferInput<S> : unknown;
type Out<S> = S extends AnySchema ? StandardSchemaV1.InferOutput<S> : unknown;

/** Options of {@link defineTask}. */
export interface TaskOptions<S extends AnySchema | undefined, R> {
  /** Payload schema (any Standard Schema: zod, valibot, arktype). Default: none, any JSON. */
  schema?: S;
  /** The channel its messages travel on unless a dispatch or subscription says otherwise. Default: the Ferry's default channel. */
  channel?: string;
  /** Retry policy. Default 3 attempts, exponential backoff from 1 s with 20% jitter. */
  retry?: RetryOptions;
  /** Abort the handler after this long (its `signal` fires) and count the attempt as failed with `TIMEOUT`. Default `"5m"`. */
  timeout?: Duration;
  /** Default priority of its messages, -1000..1000, higher first. Default 0. */
  priority?: number;
  /** The handler. Return a JSON result; throw `RetryLater`, `Snooze`, `Cancel` or `Unrecoverable` to steer. */
  run: (payload: Out<S>, ctx: TaskContext) => Promise<R> | R;
}

/** A defined task. */
export interface TaskDefinition<I = unknown, O = unknown, R = unknown> {
  readonly kind: "task";
  readonly name: string;
  readonly schema: AnySchema | undefined;
  readonly channel: string | undefined;
  readonly retry: RetryPolicy;
  readonly timeoutMs: number;
  readonly priority: number;
  /** The handler (a method, so tasks of any payload type fit where any task is taken). */
  run(payload: O, ctx: TaskContext): Promise<R> | R;
  /** Type carriers only; never set. */
  readonly __types?: { input: I; output: O; result: R };
}

/** A defined event. */
export interface EventDefinition<I = unknown, O = unknown> {
  readonly kind: "event";
  readonly name: string;
  readonly schema: AnySchema | undefined;
  readonly __types?: { input: I; output: O };
}

/** The payload type a caller passes for a task or event. */
export type InputOf<T> = T extends TaskDefinition<infer I, unknown, unknown> ? I : T extends EventDefinition<infer I, unknown> ? I : never;
/** The result type of a task. */
export type ResultOf<T> = T extends TaskDefinition<unknown, unknown, infer R> ? Awaited<R> : never;

/** The default handler timeout: 5 minutes. */
export const DEFAULT_TIMEOUT_MS = 5 * 60_000;

function checkSchema(schema: unknown, what: string): void {
  if (schema !== undefined && !isStandardSchema(schema)) {
    throw new FerryError("INVALID_OPTION", `${what} schema must implement Standard Schema (zod, valibot, arktype...)`, { details: { option: "schema" } });
  }
}

/**
 * Define a task.
 * @throws FerryError `INVALID_NAME`, `INVALID_OPTION`
 */
export function defineTask<S extends AnySchema | undefined = undefined, R = unknown>(name: string, options: TaskOptions<S, R>): TaskDefinition<In<S>, Out<S>, R> {
  assertName(name, "task name");
  if (typeof options !== "object" || options === null || typeof options.run !== "function") {
    throw new FerryError("INVALID_OPTION", `task "${name}" needs a run(payload, ctx) function`, { details: { option: "run" } });
  }
  checkSchema(options.schema, `task "${name}"`);
  if (options.channel !== undefined) assertChannel(options.channel);
  const priority = options.priority ?? 0;
  if (!Number.isInteger(priority) || priority < -1000 || priority > 1000) {
    throw new FerryError("INVALID_OPTION", `task "${name}": priority must be a whole number from -1000 to 1000`, { details: { option: "priority" } });
  }
  return {
    kind: "task",
    name,
    schema: options.schema,
    channel: options.channel,
    retry: retryPolicy(options.retry),
    timeoutMs: options.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(options.timeout, `task "${name}" timeout`),
    priority,
    run: options.run as (payload: Out<S>, ctx: TaskContext) => Promise<R> | R,
  };
}

/**
 * Define an event.
 * @throws FerryError `INVALID_NAME`, `INVALID_OPTION`
 */
export function defineEvent<S extends AnySchema | undefined = undefined>(name: string, schema?: S): EventDefinition<In<S>, Out<S>> {
  assertName(name, "event name");
  checkSchema(schema, `event "${name}"`);
  return { kind: "event", name, schema };
}
