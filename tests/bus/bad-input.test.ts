import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import {
  createEnvelope,
  createFerry,
  createTransport,
  decodeEnvelope,
  defineEvent,
  defineTask,
  FerryError,
  MemoryTransport,
  parseDuration,
  retryPolicy,
  type ErrorCode,
} from "../../src/index.ts";

/** Assert that `fn` throws (or rejects with) a FerryError with `code` and a message that says something. */
async function refuses(code: ErrorCode, fn: () => unknown): Promise<void> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof FerryError, `expected a FerryError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(caught.message.length > 15, "the message says what to do");
}

const noop = defineTask("noop", { schema: z.object({ email: z.string().email() }), run: () => undefined });

describe("bad input is refused with a stable code", () => {
  it("names", async () => {
    for (const bad of ["", " ", "a b", "../x", "x;drop", ".lead", "trail.", "a..b", "é", "x".repeat(201), 42, null, "a*"]) {
      await refuses("INVALID_NAME", () => defineTask(bad as string, { run: () => undefined }));
    }
    await refuses("INVALID_NAME", () => defineEvent("bad name"));
    await refuses("INVALID_NAME", () => defineTask("ok", { channel: "bad channel", run: () => undefined }));
    const ferry = createFerry({ transport: new MemoryTransport() });
    await refuses("INVALID_NAME", () => ferry.on("order.*.pa id", noop));
    await refuses("INVALID_NAME", () => ferry.publish("order.*.paid", {}));
    await refuses("INVALID_NAME", () => ferry.dispatch(noop, { email: "a@b.co" }, { channel: "no/slash" }));
    await refuses("INVALID_NAME", () => ferry.worker({ channels: ["has space"] }));
    await ferry.close();
  });

  it("task and event options", async () => {
    await refuses("INVALID_OPTION", () => defineTask("t", {} as never));
    await refuses("INVALID_OPTION", () => defineTask("t", { run: () => undefined, timeout: "soon" }));
    await refuses("INVALID_OPTION", () => defineTask("t", { run: () => undefined, timeout: -5 }));
    await refuses("INVALID_OPTION", () => defineTask("t", { run: () => undefined, retry: { attempts: 0 } }));
    await refuses("INVALID_OPTION", () => defineTask("t", { run: () => undefined, retry: { jitter: 2 } }));
    await refuses("INVALID_OPTION", () => defineTask("t", { run: () => undefined, retry: { backoff: "linear" as never } }));
    await refuses("INVALID_OPTION", () => defineTask("t", { run: () => undefined, priority: 1.5 }));
    await refuses("INVALID_OPTION", () => defineTask("t", { run: () => undefined, schema: { parse() {} } as never }));
    await refuses("INVALID_OPTION", () => defineEvent("e", {} as never));
    await refuses("INVALID_OPTION", () => retryPolicy({ delay: "1 fortnight" }));
    await refuses("INVALID_OPTION", () => parseDuration(Number.NaN));
    await refuses("INVALID_OPTION", () => parseDuration("-1s"));
  });

  it("transport URLs and Ferry options", async () => {
    await refuses("INVALID_URL", () => createFerry({ transport: "not a url" }));
    await refuses("INVALID_URL", () => createFerry({ transport: "" }));
    await refuses("UNKNOWN_TRANSPORT", () => createFerry({ transport: "kafka://localhost" }));
    await refuses("UNKNOWN_TRANSPORT", () => createTransport("ftp://x"));
    await refuses("INVALID_OPTION", () => createFerry({ transport: 42 as never }));
    await refuses("INVALID_OPTION", () => createFerry({ transprot: "memory://" } as never));
    await refuses("UNKNOWN_TRANSPORT", () => createFerry({ transport: "memory://", channels: { emails: "smtp://x" } }));
    await refuses("INVALID_NAME", () => createFerry({ transport: "memory://", channels: { "bad name": "memory://" } }));
    await refuses("INVALID_OPTION", () => createFerry({ transport: "memory://", onRun: "yes" as never }));
  });

  it("dispatch, publish and request", async () => {
    const ferry = createFerry({ transport: new MemoryTransport(), tasks: [noop] });
    await refuses("INVALID_PAYLOAD", () => ferry.dispatch(noop, { email: "not an email" }));
    await refuses("INVALID_PAYLOAD", () => ferry.dispatch(noop, undefined as never));
    await refuses("INVALID_PAYLOAD", () => ferry.dispatch("free.form", { f: () => 1 }, { channel: "c" }));
    await refuses("INVALID_PAYLOAD", () => ferry.dispatch("free.form", { n: Number.POSITIVE_INFINITY }, { channel: "c" }));
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await refuses("INVALID_PAYLOAD", () => ferry.dispatch("free.form", cyclic, { channel: "c" }));
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    await refuses("INVALID_PAYLOAD", () => ferry.dispatch("free.form", deep, { channel: "c" }));
    await refuses("UNKNOWN_TASK", () => ferry.dispatch("never.registered", {}));
    await refuses("INVALID_OPTION", () => ferry.dispatch(noop, { email: "a@b.co" }, { dealy: 5 } as never));
    await refuses("INVALID_OPTION", () => ferry.dispatch(noop, { email: "a@b.co" }, { delay: -1 }));
    await refuses("INVALID_OPTION", () => ferry.dispatch(noop, { email: "a@b.co" }, { delay: "5 minutes" }));
    await refuses("INVALID_OPTION", () => ferry.dispatch(noop, { email: "a@b.co" }, { delay: 5, runAt: Date.now() }));
    await refuses("INVALID_OPTION", () => ferry.dispatch(noop, { email: "a@b.co" }, { runAt: Number.NaN }));
    await refuses("INVALID_OPTION", () => ferry.dispatch(noop, { email: "a@b.co" }, { priority: 5000 }));
    await refuses("INVALID_OPTION", () => ferry.dispatch(noop, { email: "a@b.co" }, { maxAttempts: 0 }));
    await refuses("INVALID_OPTION", () => ferry.dispatch(noop, { email: "a@b.co" }, { dedupKey: "" }));
    await refuses("INVALID_OPTION", () => ferry.dispatch(noop, { email: "a@b.co" }, { headers: { n: 1 as never } }));
    await refuses("INVALID_OPTION", () => ferry.dispatchMany(noop, "nope" as never));
    await refuses("INVALID_MESSAGE", () => ferry.dispatch(noop, { email: "a@b.co" }, { id: "has space" }));
    await refuses("INVALID_OPTION", () => ferry.dispatchMany(noop, [], { id: "x" } as never));
    await refuses("INVALID_PAYLOAD", () => ferry.dispatchMany(noop, [{ email: "a@b.co" }, { email: "bad" }]));
    await refuses("NOT_SUPPORTED", () => ferry.dispatch(noop, { email: "a@b.co" }, { transaction: {} }));
    const ev = defineEvent("user.registered", z.object({ id: z.string() }));
    await refuses("INVALID_PAYLOAD", () => ferry.publish(ev, { id: 5 } as never));
    await refuses("INVALID_OPTION", () => ferry.publish(ev, { id: "x" }, { tx: 1 } as never));
    await refuses("INVALID_OPTION", () => ferry.request(noop, { email: "a@b.co" }, { timeout: "forever" }));
    await refuses("INVALID_OPTION", () => ferry.on(ev, noop, { delay: "1s" }));
    await refuses("INVALID_OPTION", () => ferry.on(ev, "noop" as never));
    await refuses("DUPLICATE_TASK", () => ferry.register(defineTask("noop", { run: () => undefined })));
    const counts = await (await ferry.transport("default") as MemoryTransport).counts();
    assert.deepEqual(counts, [], "nothing refused was stored");
    await ferry.close();
  });

  it("worker options", async () => {
    const ferry = createFerry({ transport: new MemoryTransport(), tasks: [noop] });
    await refuses("INVALID_OPTION", () => ferry.worker({ concurrency: 0 }));
    await refuses("INVALID_OPTION", () => ferry.worker({ concurrency: 2.5 }));
    await refuses("INVALID_OPTION", () => ferry.worker({ lease: 10 }));
    await refuses("INVALID_OPTION", () => ferry.worker({ channels: [] }));
    await refuses("INVALID_OPTION", () => ferry.worker({ concurrancy: 5 } as never));
    const empty = createFerry({ transport: new MemoryTransport() });
    await refuses("INVALID_OPTION", () => empty.worker().start());
    await ferry.close();
    await empty.close();
  });

  it("wire-format messages", async () => {
    await refuses("INVALID_MESSAGE", () => decodeEnvelope("{not json"));
    await refuses("INVALID_MESSAGE", () => decodeEnvelope("[]"));
    await refuses("INVALID_MESSAGE", () => decodeEnvelope({ v: 2, name: "a", channel: "b", payload: 1 }));
    await refuses("INVALID_MESSAGE", () => decodeEnvelope({ v: 1, name: "a", channel: "b" }));
    await refuses("INVALID_MESSAGE", () => decodeEnvelope({ v: 1, name: "a", channel: "b", payload: 1, runAt: "tomorrow" }));
    await refuses("INVALID_MESSAGE", () => decodeEnvelope({ v: 1, name: "a", channel: "b", payload: 1, id: "has space" }));
    await refuses("INVALID_MESSAGE", () => decodeEnvelope({ v: 1, name: "a", channel: "b", payload: 1, headers: { x: 1 } }));
    await refuses("INVALID_NAME", () => decodeEnvelope({ v: 1, name: "a b", channel: "b", payload: 1 }));
    await refuses("INVALID_MESSAGE", () => createEnvelope({ name: "a", channel: "b", payload: 1, maxAttempts: 0 }));
    const ok = decodeEnvelope('{"v":1,"name":"email.welcome","channel":"emails","payload":{"to":"a@b.co"},"runAt":"2030-01-01T00:00:00Z"}');
    assert.equal(ok.runAt, Date.parse("2030-01-01T00:00:00Z"));
    assert.equal(ok.headers.correlationId, ok.id);
  });
});
