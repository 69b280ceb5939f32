/**
 * The HTTP API as a Hono app: routes, token scopes, body limits, error bodies.
 * `serve()` (server.ts) puts it on a Node HTTP server; tests may also call it.
 */
import { createHash } from "node:crypto";
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { EventDefinition } from "../bus/define.ts";
import type { DispatchReceipt, Ferry } from "../bus/ferry.ts";
import { FerryError } from "../core/errors.ts";
import { assertChannel, assertName } from "../core/names.ts";
import { isPausable } from "../transport/types.ts";
import { isLoopback, resolveTokens, TokenChecker, type Scope, type TokenConfig } from "./auth.ts";
import { assertJsonContentType, readJsonBody, type BodyLimits } from "./body.ts";
import { HttpError, toErrorResponse } from "./http-errors.ts";
import { checkIdempotencyKey, IdempotencyCache, type IdempotencyOptions } from "./idempotency.ts";
import { actOnDead, findMessage, viewOf } from "./messages.ts";
import { FerryMetrics } from "./metrics.ts";
import { openApiDocument } from "./openapi.ts";
import { SseHub, type SseHubOptions } from "./sse.ts";

/** Options of {@link createApp} (and of `serve`). */
export interface AppOptions {
  /** Tokens by scope. Default: `FERRY_TOKEN`, `FERRY_ADMIN_TOKEN` and the file named by `FERRY_TOKENS_FILE`; none means open (loopback only). */
  tokens?: TokenConfig;
  /** Largest request body in bytes. Default 1 MiB (1,048,576). */
  bodyLimit?: number;
  /** Deepest nesting of objects/arrays in a request body. Default 32. */
  maxDepth?: number;
  /** Most object keys in a request body. Default 1000. */
  maxKeys?: number;
  /** Events that may be published over HTTP (and appear in the OpenAPI document). Default: none listed, any valid name may be published. */
  events?: EventDefinition[];
  /** How long and how many `Idempotency-Key`s are remembered. Default 24 hours, 10,000 keys. */
  idempotency?: IdempotencyOptions;
  /** Event-stream settings. Default: re-read watched messages every 2 s, at most 10,000 streams. */
  sse?: SseHubOptions;
}

/** The parts of an app that tests and `serve` reach for. */
export interface AppInternals {
  hub: SseHub;
  idempotency: IdempotencyCache;
  metrics: FerryMetrics;
  tokens: TokenChecker;
  /** Close streams and stop listening to the Ferry (the Ferry itself stays open). */
  close(): void;
}

/** Routes that answer without a token, deliberately: a liveness probe that reveals nothing. */
export const OPEN_ROUTES: readonly string[] = ["GET /healthz"];

type Env = { Variables: { scope: Scope } };

const internals = new WeakMap<object, AppInternals>();

/** The internals of an app made by {@link createApp}. */
export function appInternals(app: Hono<Env>): AppInternals {
  const found = internals.get(app);
  if (!found) throw new FerryError("INVALID_OPTION", "this app was not made by createApp()");
  return found;
}

const BODY_KEYS_TASK = ["payload", "delay", "runAt", "priority", "maxAttempts", "correlationId"];
const BODY_KEYS_EVENT = ["payload", "correlationId"];

function bodyObject(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError("INVALID_PAYLOAD", `the body must be a JSON object: {"payload": ...${allowed.length > 2 ? ', "delay": "5s"' : ""}}`);
  }
  const o = body as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!allowed.includes(key)) throw new HttpError("INVALID_OPTION", `unknown body field "${key.slice(0, 100)}"; known: ${allowed.join(", ")}`, { option: key.slice(0, 100) });
  if (!Object.hasOwn(o, "payload")) throw new HttpError("INVALID_PAYLOAD", "the body needs a \"payload\" field (use null for none)");
  if (o.correlationId !== undefined && (typeof o.correlationId !== "string" || o.correlationId.length === 0 || o.correlationId.length > 200)) {
    throw new HttpError("INVALID_OPTION", "correlationId must be 1-200 characters", { option: "correlationId" });
  }
  return o;
}

function runAtOf(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number") return value;
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}T/.test(value)) {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new HttpError("INVALID_OPTION", "runAt must be ms since the epoch or an ISO 8601 time", { option: "runAt" });
}

const accepted = (r: DispatchReceipt) => ({
  id: r.id,
  task: r.task,
  channel: r.channel,
  deduplicated: r.deduplicated,
  statusUrl: `/v1/messages/${r.id}`,
  eventsUrl: `/v1/messages/${r.id}/events`,
});

function idempotencyKey(c: Context): string | undefined {
  const key = c.req.header("idempotency-key");
  return key === undefined ? undefined : checkIdempotencyKey(key);
}

/**
 * Build the HTTP API for `ferry`. Every route needs a Bearer token except those
 * in {@link OPEN_ROUTES}; admin routes need an admin token.
 * @throws FerryError `CONFIG_INVALID` for a malformed token.
 */
export function createApp(ferry: Ferry, options: AppOptions = {}): Hono<Env> {
  const tokens = new TokenChecker(resolveTokens(options.tokens));
  const limits: BodyLimits = { bodyLimit: options.bodyLimit ?? 1 << 20, maxDepth: options.maxDepth ?? 32, maxKeys: options.maxKeys ?? 1000 };
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isInteger(v) || v < 1) throw new FerryError("INVALID_OPTION", `${k} must be a whole number >= 1`, { details: { option: k } });
  }
  // Given events are an allowlist; by default every event name may be published (patterns route
  // external names) and the Ferry's own event definitions describe the API.
  const events = options.events ?? ferry.eventDefinitions();
  const knownEvents = new Set((options.events ?? []).map((e) => e.name));
  const hub = new SseHub(ferry, options.sse);
  const idempotency = new IdempotencyCache(options.idempotency);
  const metrics = new FerryMetrics(ferry);
  const app = new Hono<Env>();
  internals.set(app, { hub, idempotency, metrics, tokens, close: () => (hub.close(), metrics.close(), idempotency.clear()) });

  app.onError((err, c) => {
    const { status, body } = toErrorResponse(err);
    if (status >= 500 && !(err instanceof HttpError) && !(err instanceof FerryError)) {
      process.emitWarning(`ferry http: ${c.req.method} ${routePath(c, -1)} failed: ${(err as Error)?.message ?? String(err)}`, { code: "FERRY_HTTP_ERROR" });
    }
    if (status === 401) c.header("www-authenticate", 'Bearer realm="ferry"');
    if (status === 413) c.header("connection", "close");
    return c.json(body, status as 400);
  });
  app.notFound((c) => c.json({ error: { code: "NOT_FOUND", message: `no route ${c.req.method} ${new URL(c.req.url).pathname.slice(0, 200)}` } }, 404));

  app.use("*", async (c, next) => {
    await next();
    c.res.headers.set("x-content-type-options", "nosniff");
    if (!c.res.headers.has("cache-control")) c.res.headers.set("cache-control", "no-store");
    metrics.request(c.req.method, routePath(c, -1) || "unmatched", c.res.status);
  });

  app.use("*", async (c, next) => {
    const method = c.req.method;
    if (OPEN_ROUTES.includes(`${method} ${c.req.path}`)) return next();
    const url = new URL(c.req.url);
    c.set("scope", tokens.authorize(c.req.header("authorization"), url));
    // Without tokens, only requests addressed to a loopback name pass: a page whose own
    // domain was re-pointed at 127.0.0.1 (DNS rebinding) sends its domain as Host.
    if (tokens.open && !isLoopback(url.hostname)) throw new HttpError("FORBIDDEN", "without API tokens this server only answers requests addressed to localhost or 127.0.0.1");
    if (method !== "GET" && method !== "HEAD") {
      // Browsers label cross-site requests; an API client sends neither header.
      const site = c.req.header("sec-fetch-site");
      if (site === "cross-site" || site === "same-site") throw new HttpError("CROSS_SITE", "cross-site requests are refused");
      const origin = c.req.header("origin");
      if (origin !== undefined && origin !== new URL(c.req.url).origin) throw new HttpError("CROSS_SITE", "requests from another origin are refused");
    }
    return next();
  });

  const adminOnly: MiddlewareHandler<Env> = async (c, next) => {
    if (c.get("scope") !== "admin") throw new HttpError("FORBIDDEN", "this action needs an admin token");
    // No body is read, but a form content type marks a browser form post: refuse it.
    const type = c.req.header("content-type");
    if (type !== undefined && type !== "") assertJsonContentType(type);
    return next();
  };

  app.get("/healthz", (c) => c.json({ ok: true }));

  app.post("/v1/tasks/:name", async (c) => {
    const name = assertName(c.req.param("name"), "task name");
    const task = ferry.task(name);
    if (!task) throw new HttpError("UNKNOWN_TASK", `no task "${name}" is registered on this server`);
    const key = idempotencyKey(c);
    const body = bodyObject(await readJsonBody(c.req.raw, limits), BODY_KEYS_TASK);
    const work = async () => {
      const receipt = await ferry.dispatch(task, body.payload, {
        ...(body.delay !== undefined ? { delay: body.delay as number | string } : {}),
        ...(body.runAt !== undefined ? { runAt: runAtOf(body.runAt)! } : {}),
        ...(body.priority !== undefined ? { priority: body.priority as number } : {}),
        ...(body.maxAttempts !== undefined ? { maxAttempts: body.maxAttempts as number } : {}),
        ...(body.correlationId !== undefined ? { correlationId: body.correlationId as string } : {}),
        ...(key !== undefined ? { dedupKey: `http:${createHash("sha256").update(`${name}\0${key}`).digest("base64url").slice(0, 40)}` } : {}),
      });
      return accepted(receipt);
    };
    const { value, replayed } = key === undefined ? { value: await work(), replayed: false } : await idempotency.run(`task:${name}`, key, body, work);
    if (replayed) c.header("idempotent-replayed", "true");
    c.header("location", value.statusUrl);
    return c.json(value, 202);
  });

  app.post("/v1/events/:name", async (c) => {
    const name = assertName(c.req.param("name"), "event name");
    if (knownEvents.size > 0 && !knownEvents.has(name)) throw new HttpError("UNKNOWN_EVENT", `no event "${name}" may be published on this server`);
    const key = idempotencyKey(c);
    const body = bodyObject(await readJsonBody(c.req.raw, limits), BODY_KEYS_EVENT);
    const def = events.find((e) => e.name === name);
    const work = async () => {
      const receipt = await ferry.publish(def ?? name, body.payload as never, body.correlationId !== undefined ? { correlationId: body.correlationId as string } : {});
      return { id: receipt.id, event: receipt.event, messages: receipt.messages.map(accepted), ran: receipt.ran };
    };
    const { value, replayed } = key === undefined ? { value: await work(), replayed: false } : await idempotency.run(`event:${name}`, key, body, work);
    if (replayed) c.header("idempotent-replayed", "true");
    return c.json(value, 202);
  });

  app.get("/v1/messages/:id", async (c) => c.json(viewOf((await findMessage(ferry, c.req.param("id"))).record)));

  app.get("/v1/messages/:id/events", async (c) => {
    const { record } = await findMessage(ferry, c.req.param("id"));
    if (hub.size >= hub.maxStreams) throw new HttpError("TOO_MANY_STREAMS", "too many event streams are open; retry later");
    const stream = hub.open(c.req.raw.signal);
    hub.watch(stream, viewOf(record));
    return stream.response;
  });

  app.get("/v1/stream", (c) => {
    const channel = c.req.query("channel");
    if (channel !== undefined) assertChannel(channel);
    if (hub.size >= hub.maxStreams) throw new HttpError("TOO_MANY_STREAMS", "too many event streams are open; retry later");
    const stream = hub.open(c.req.raw.signal);
    hub.follow(stream, channel);
    return stream.response;
  });

  app.post("/v1/dead/:id/replay", adminOnly, async (c) => {
    const view = await actOnDead(ferry, c.req.param("id"), "replay");
    return c.json({ id: view.id, replayed: true });
  });

  app.delete("/v1/dead/:id", adminOnly, async (c) => {
    const view = await actOnDead(ferry, c.req.param("id"), "discard");
    return c.json({ id: view.id, discarded: true });
  });

  for (const action of ["pause", "resume"] as const) {
    app.post(`/v1/channels/:channel/${action}`, adminOnly, async (c) => {
      const channel = assertChannel(c.req.param("channel"));
      const transport = await ferry.transport(channel);
      if (!isPausable(transport)) throw new HttpError("NOT_SUPPORTED", `the ${transport.kind} transport cannot pause channels`, undefined, 501);
      await transport[action](channel);
      return c.json({ channel, paused: action === "pause" });
    });
  }

  app.get("/metrics", async (c) => {
    const text = await metrics.registry.metrics();
    return c.body(text, 200, { "content-type": metrics.registry.contentType });
  });

  app.get("/v1/openapi.json", (c) => c.json(openApiDocument(ferry, events, "1.0.0")));

  return app;
}
