/**
 * Every route over real HTTP on SQLite: enqueue and publish (202), status,
 * idempotency, server-sent events to the result, the channel stream, the
 * dead-letter and pause admin, metrics, OpenAPI, health.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Worker } from "../../src/index.ts";
import { appInternals } from "../../src/http/server.ts";
import { ADMIN_TOKEN, errorCode, readEvents, startApi, until, type Api } from "./http-support.ts";

interface Accepted {
  id: string;
  task: string;
  channel: string;
  deduplicated: boolean;
  statusUrl: string;
  eventsUrl: string;
}

describe("HTTP routes", () => {
  let api: Api;
  let worker: Worker | undefined;
  before(async () => {
    api = await startApi();
  });
  after(async () => {
    await worker?.stop();
    await api.stop();
  });
  const startWorker = async () => {
    if (worker) return;
    worker = api.ferry.worker({ channels: ["default", "emails"], concurrency: 4 });
    await worker.start();
  };

  it("POST /v1/tasks/:name answers 202 with the id and where to follow it", async () => {
    const res = await api.call("POST", "/v1/tasks/math.add", { body: { payload: { a: 2, b: 3 }, delay: "1h", priority: 5 } });
    assert.equal(res.status, 202);
    const body = (await res.json()) as Accepted;
    assert.equal(body.task, "math.add");
    assert.equal(body.channel, "default");
    assert.equal(body.deduplicated, false);
    assert.equal(body.statusUrl, `/v1/messages/${body.id}`);
    assert.equal(body.eventsUrl, `/v1/messages/${body.id}/events`);
    assert.equal(res.headers.get("location"), body.statusUrl);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    const status = await api.call("GET", body.statusUrl);
    assert.equal(status.status, 200);
    const view = (await status.json()) as { state: string; attempt: number; runAt: number; createdAt: number; errors: unknown[]; result: unknown };
    assert.equal(view.state, "waiting");
    assert.equal(view.attempt, 0);
    assert.ok(view.runAt - view.createdAt >= 3_599_000, "the delay was applied");
    assert.deepEqual(view.errors, []);
    assert.equal(view.result, null);
  });

  it("runAt as ISO text is honoured", async () => {
    const at = Date.now() + 3_600_000;
    const res = await api.call("POST", "/v1/tasks/math.add", { body: { payload: { a: 1, b: 1 }, runAt: new Date(at).toISOString() } });
    const { statusUrl } = (await res.json()) as Accepted;
    const view = (await (await api.call("GET", statusUrl)).json()) as { runAt: number };
    assert.ok(Math.abs(view.runAt - at) < 1000);
  });

  it("Idempotency-Key: a retried POST gets the same 202 body and enqueues once", async () => {
    const post = (payload: unknown, key: string) => api.call("POST", "/v1/tasks/math.add", { body: { payload }, headers: { "idempotency-key": key } });
    const first = await post({ a: 7, b: 7 }, "order-123");
    const second = await post({ a: 7, b: 7 }, "order-123");
    assert.equal(first.status, 202);
    assert.equal(second.status, 202);
    assert.equal(second.headers.get("idempotent-replayed"), "true");
    const a = (await first.json()) as Accepted;
    assert.deepEqual(await second.json(), a);
    const concurrent = await Promise.all(Array.from({ length: 5 }, () => post({ a: 8, b: 8 }, "order-456").then((r) => r.json() as Promise<Accepted>)));
    assert.equal(new Set(concurrent.map((c) => c.id)).size, 1, "concurrent retries share one message");
    const other = (await (await post({ a: 7, b: 7 }, "order-124")).json()) as Accepted;
    assert.notEqual(other.id, a.id);
    const conflict = await post({ a: 1, b: 1 }, "order-123");
    assert.equal(conflict.status, 409);
    assert.equal(await errorCode(conflict), "IDEMPOTENCY_CONFLICT");
    const bad = await post({ a: 1, b: 1 }, "has space");
    assert.equal(bad.status, 400);
    assert.equal(await errorCode(bad), "INVALID_HEADER");
  });

  it("Idempotency-Key falls back to the message's dedupKey once the memory forgets", async () => {
    const post = () => api.call("POST", "/v1/tasks/math.add", { body: { payload: { a: 9, b: 9 }, delay: "1h" }, headers: { "idempotency-key": "forgotten-key" } });
    const first = (await (await post()).json()) as Accepted;
    appInternals(api.server.app).idempotency.clear();
    const second = (await (await post()).json()) as Accepted;
    assert.equal(second.id, first.id);
    assert.equal(second.deduplicated, true);
  });

  it("POST /v1/events/:name fans out and lists each message with its URLs", async () => {
    const res = await api.call("POST", "/v1/events/user.registered", { body: { payload: { email: "a@example.com" } } });
    assert.equal(res.status, 202);
    const body = (await res.json()) as { id: string; event: string; messages: Accepted[]; ran: string[] };
    assert.equal(body.event, "user.registered");
    assert.equal(body.messages.length, 1);
    assert.equal(body.messages[0]!.task, "email.welcome");
    assert.equal(body.messages[0]!.channel, "emails");
    const status = await api.call("GET", body.messages[0]!.statusUrl);
    assert.equal(((await status.json()) as { state: string }).state, "waiting");
    const invalid = await api.call("POST", "/v1/events/user.registered", { body: { payload: { email: "not-an-email" } } });
    assert.equal(invalid.status, 400);
    assert.equal(await errorCode(invalid), "INVALID_PAYLOAD");
    const unknown = await api.call("POST", "/v1/events/user.deleted", { body: { payload: {} } });
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), "UNKNOWN_EVENT");
  });

  it("GET /v1/messages/:id/events streams the state, each run and the result, then ends", async () => {
    const res = await api.call("POST", "/v1/tasks/math.add", { body: { payload: { a: 20, b: 22 } } });
    const { eventsUrl } = (await res.json()) as Accepted;
    const stream = await api.call("GET", eventsUrl);
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get("content-type") ?? "", /^text\/event-stream/);
    const reading = readEvents(stream);
    await startWorker();
    const events = await reading;
    assert.equal(events[0]!.event, "state");
    const last = events.at(-1)!.data as { state: string; result: unknown };
    assert.equal(last.state, "completed");
    assert.deepEqual(last.result, { sum: 42 });
    const run = events.find((e) => e.event === "run")?.data as { status: string; result: unknown } | undefined;
    assert.ok(run, "the run event of this process's worker was streamed");
    assert.equal(run.status, "completed");
    await until(() => appInternals(api.server.app).hub.size === 0);
  });

  it("a finished message's stream answers its final state at once", async () => {
    await startWorker();
    const res = await api.call("POST", "/v1/tasks/math.add", { body: { payload: { a: 1, b: 2 } } });
    const { statusUrl, eventsUrl } = (await res.json()) as Accepted;
    await until(async () => ((await (await api.call("GET", statusUrl)).json()) as { state: string }).state === "completed");
    const events = await readEvents(await api.call("GET", eventsUrl));
    assert.equal(events.length, 1);
    assert.deepEqual((events[0]!.data as { result: unknown }).result, { sum: 3 });
  });

  it("an event stream is cleaned up when its client disconnects", async () => {
    const res = await api.call("POST", "/v1/tasks/math.add", { body: { payload: { a: 1, b: 1 }, delay: "1h" } });
    const { eventsUrl } = (await res.json()) as Accepted;
    const hub = appInternals(api.server.app).hub;
    const controller = new AbortController();
    const stream = await fetch(api.url + eventsUrl, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal: controller.signal });
    const events = await readEvents(stream, (e) => e.length >= 1);
    assert.equal((events[0]!.data as { state: string }).state, "waiting");
    assert.equal(hub.watched, 1);
    controller.abort();
    await until(() => hub.size === 0 && hub.watched === 0);
  });

  it("GET /v1/stream sends the runs of one channel only", async () => {
    await startWorker();
    const stream = await api.call("GET", "/v1/stream?channel=emails");
    assert.equal(stream.status, 200);
    const reading = readEvents(stream, (e) => e.some((x) => x.event === "run"));
    await api.call("POST", "/v1/tasks/math.add", { body: { payload: { a: 1, b: 1 } } }).then((r) => r.body?.cancel());
    await new Promise((r) => setTimeout(r, 300));
    await api.call("POST", "/v1/tasks/email.welcome", { body: { payload: { email: "b@example.com" } } }).then((r) => r.body?.cancel());
    const events = await reading;
    assert.equal(events[0]!.event, "ready");
    const runs = events.filter((e) => e.event === "run").map((e) => e.data as { channel: string; task: string; params?: unknown });
    assert.ok(runs.every((r) => r.channel === "emails"), "runs of other channels are not streamed");
    assert.equal(runs[0]!.task, "email.welcome");
    assert.equal(runs[0]!.params, undefined, "payloads are not streamed");
    const bad = await api.call("GET", "/v1/stream?channel=bad%20channel");
    assert.equal(bad.status, 400);
    assert.equal(await errorCode(bad), "INVALID_NAME");
  });

  it("dead letters: replay and discard for admins; NOT_DEAD otherwise", async () => {
    await startWorker();
    const res = await api.call("POST", "/v1/tasks/always.fails", { body: { payload: null } });
    const { id, statusUrl } = (await res.json()) as Accepted;
    await until(async () => ((await (await api.call("GET", statusUrl)).json()) as { state: string }).state === "dead");
    const dead = (await (await api.call("GET", statusUrl)).json()) as { errors: Array<{ code: string; message: string }> };
    assert.equal(dead.errors.at(-1)!.message, "it never works");
    const replay = await api.call("POST", `/v1/dead/${id}/replay`, { token: ADMIN_TOKEN });
    assert.equal(replay.status, 200);
    assert.deepEqual(await replay.json(), { id, replayed: true });
    // Replayed, it ran again and failed again: two failures in its history now.
    await until(async () => {
      const v = (await (await api.call("GET", statusUrl)).json()) as { state: string; errors: unknown[] };
      return v.state === "dead" && v.errors.length === 2;
    });
    const done = await api.call("POST", "/v1/tasks/math.add", { body: { payload: { a: 0, b: 0 }, delay: "1h" } });
    const live = (await done.json()) as Accepted;
    const notDead = await api.call("DELETE", `/v1/dead/${live.id}`, { token: ADMIN_TOKEN });
    assert.equal(notDead.status, 409);
    assert.equal(await errorCode(notDead), "NOT_DEAD");
    const discard = await api.call("DELETE", `/v1/dead/${id}`, { token: ADMIN_TOKEN });
    assert.equal(discard.status, 200);
    assert.deepEqual(await discard.json(), { id, discarded: true });
    const gone = await api.call("GET", statusUrl);
    assert.equal(gone.status, 404);
    assert.equal(await errorCode(gone), "NOT_FOUND");
  });

  it("GET /metrics: runs, durations, transport calls, counts per channel and state, HTTP requests", async () => {
    await startWorker();
    const res = await api.call("POST", "/v1/tasks/math.add", { body: { payload: { a: 5, b: 5 } } });
    const { statusUrl } = (await res.json()) as Accepted;
    await until(async () => ((await (await api.call("GET", statusUrl)).json()) as { state: string }).state === "completed");
    const metrics = await api.call("GET", "/metrics");
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain/);
    const text = await metrics.text();
    assert.match(text, /ferry_runs_total\{task="math.add",status="completed",channel="default"\} \d+/);
    assert.match(text, /ferry_run_duration_seconds_count\{task="math.add",status="completed"\} \d+/);
    assert.match(text, /ferry_transport_call_duration_seconds_count\{transport="sqlite",op="send",outcome="ok"\} \d+/);
    assert.match(text, /ferry_messages\{channel="default",state="completed"\} [1-9]\d*/);
    assert.match(text, /ferry_http_requests_total\{method="POST",route="\/v1\/tasks\/:name",status="202"\} \d+/);
    assert.doesNotMatch(text, /process_cpu|nodejs_/, "the global default metrics are not mixed in");
  });

  it("GET /v1/openapi.json: OpenAPI 3.1 from the task and event schemas", async () => {
    const res = await api.call("GET", "/v1/openapi.json");
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, { post?: { requestBody: { content: { "application/json": { schema: { properties: { payload: { properties?: Record<string, unknown>; required?: string[] } } } } } } } }> };
    assert.equal(doc.openapi, "3.1.0");
    const add = doc.paths["/v1/tasks/math.add"]!.post!.requestBody.content["application/json"].schema.properties.payload;
    assert.deepEqual(Object.keys(add.properties ?? {}).sort(), ["a", "b"]);
    assert.deepEqual(add.required, ["a", "b"]);
    const event = doc.paths["/v1/events/user.registered"]!.post!.requestBody.content["application/json"].schema.properties.payload;
    assert.ok(event.properties?.email, "the event schema is there");
    const failing = doc.paths["/v1/tasks/always.fails"]!.post!.requestBody.content["application/json"].schema.properties.payload;
    assert.deepEqual(failing, {}, "a task without a schema takes any JSON");
  });

  it("GET /healthz answers without a token and reveals nothing", async () => {
    const res = await api.call("GET", "/healthz", { token: null });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true });
  });
});
