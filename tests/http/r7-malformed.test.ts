/**
 * R7: malformed HTTP input. fast-check generates requests that are oversized,
 * of the wrong content type, invalid JSON, too deep, with too many keys,
 * `__proto__` keys, lone surrogates, NUL, bad delays, huge headers, bad tokens,
 * random paths and methods, and raw garbage on the socket. Over real HTTP, each
 * must answer below 500 with the status of its kind and a stable error code;
 * afterwards the server still answers and the heap has not grown without bound.
 *
 * `npm test` sends 3,000 requests; the full run sets FERRY_R7_RUNS=100000.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import fc from "fast-check";
import { ErrorCodes } from "../../src/index.ts";
import { HTTP_ERROR_STATUS } from "../../src/http/http-errors.ts";
import { appInternals } from "../../src/http/server.ts";
import { READ_TOKEN, startApi, type Api } from "./http-support.ts";

const RUNS = Number(process.env.FERRY_R7_RUNS ?? 3000);
const BODY_LIMIT = 32 * 1024;
/** Requests sent at once per property run. */
const BATCH = 10;
const KNOWN_CODES = new Set<string>([...Object.keys(HTTP_ERROR_STATUS), ...ErrorCodes]);

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

interface Case {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Statuses this kind may answer. */
  allowed: number[];
  /** Raw bytes for the socket instead of fetch. */
  raw?: string;
}

const auth = { authorization: `Bearer ${READ_TOKEN}` };
const json = { ...auth, "content-type": "application/json" };
const task = (payload: string, extra: Record<string, string> = {}, name = "always.fails"): Omit<Case, "kind" | "allowed"> => ({ method: "POST", path: `/v1/tasks/${name}`, headers: { ...json, ...extra }, body: `{"payload":${payload}}` });

const nest = (depth: number, open: string, close: string) => open.repeat(depth) + close.repeat(depth);

const cases: fc.Arbitrary<Case> = fc.oneof(
  fc.integer({ min: BODY_LIMIT + 1, max: BODY_LIMIT * 3 }).map((n) => ({ kind: "oversized", ...task(JSON.stringify("x".repeat(n))), allowed: [413] })),
  fc
    .tuple(fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=z", "text/html", "application/xml", "application/json; charset=utf-16", "application/jsonx", "", "json", "application/octet-stream"), fc.string())
    .map(([type, body]) => ({ kind: "content-type", method: "POST", path: "/v1/tasks/always.fails", headers: { ...auth, "content-type": type }, body, allowed: [415] })),
  fc.string({ maxLength: 200 }).filter((s) => { try { JSON.parse(s); return false; } catch { return true; } }).map((s) => ({ kind: "invalid-json", method: "POST", path: "/v1/tasks/always.fails", headers: json, body: s, allowed: [400] })),
  fc.tuple(fc.integer({ min: 33, max: 5000 }), fc.boolean()).map(([d, arr]) => ({ kind: "deep", ...task(arr ? nest(d, "[", "]") : nest(d, '{"a":', "}").replace(/}+$/, (m) => "1" + m)), allowed: [400] })),
  fc.integer({ min: 1001, max: 2500 }).map((n) => ({ kind: "many-keys", ...task(`{${Array.from({ length: n }, (_, i) => `"k${i}":0`).join(",")}}`), allowed: [400] })),
  fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.boolean()).map(([v, escaped]) => ({ kind: "proto", ...task(`{"x":${JSON.stringify(v) ?? "null"},"${escaped ? "\\u005f_proto__" : "__proto__"}":{"polluted":1}}`), allowed: [400] })),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((cp) => ({ kind: "lone-surrogate", ...task(`{"s":"a\\u${cp.toString(16)}b"}`), allowed: [400] })),
  fc.string({ maxLength: 50 }).map((s) => ({ kind: "nul", ...task(JSON.stringify({ s: `${s}\u0000${s}` })), allowed: [202] })),
  fc
    .oneof(fc.double(), fc.integer(), fc.constantFrom("NaN", "-1s", "Infinity", "1e400", "", "5 parsecs", "-0", "999999999d"), fc.string({ maxLength: 20 }))
    .map((d) => ({ kind: "delay", method: "POST", path: "/v1/tasks/always.fails", headers: json, body: `{"payload":1,"delay":${JSON.stringify(d) ?? "null"}}`, allowed: [202, 400] })),
  fc.integer({ min: 17 * 1024, max: 64 * 1024 }).map((n) => ({ kind: "huge-header", method: "GET", path: "/v1/openapi.json", headers: { ...auth, "x-filler": "h".repeat(n) }, allowed: [431] })),
  fc.constantFrom("", "Bearer", "Bearer ", `bearer ${READ_TOKEN}x`, `Basic ${READ_TOKEN}`, `Bearer ${READ_TOKEN} extra`, "Bearer \t", `Token ${READ_TOKEN}`).map((a) => ({ kind: "bad-token", method: "GET", path: "/v1/openapi.json", headers: { authorization: a }, allowed: [401] })),
  fc.string({ maxLength: 300 }).map((k) => ({ kind: "idempotency-key", ...task("1", { "idempotency-key": k.replace(/[^\x20-\x7e]/g, "") }), allowed: [202, 400] })),
  fc.jsonValue({ maxDepth: 4 }).map((v) => ({ kind: "payload", ...task(JSON.stringify(v) ?? "null", {}, "math.add"), allowed: [202, 400] })),
  fc
    .tuple(fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"), fc.array(fc.oneof(fc.webSegment(), fc.constantFrom("v1", "tasks", "events", "messages", "dead", "channels", "pause", "stream", "%00", "%2e%2e", "%ZZ", "..", "math.add")), { maxLength: 5 }), fc.option(fc.string({ maxLength: 100 })))
    .map(([method, segs, body]) => ({ kind: "random-route", method, path: `/${segs.join("/")}`, headers: json, ...(body !== null && method !== "GET" ? { body } : {}), allowed: [200, 202, 400, 401, 403, 404, 409, 413, 415, 501] })),
  fc
    .constantFrom("GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "POST /v1/tasks/math.add HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", "GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", "POST /v1/tasks/math.add HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    .map((raw) => ({ kind: "raw", method: "", path: "", headers: {}, raw, allowed: [0, 400, 401, 404, 505] })),
);

function sendRaw(url: string, text: string): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let got = "";
    const done = () => {
      socket.destroy();
      resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(got)?.[1] ?? 0));
    };
    socket.setEncoding("utf8");
    socket.setTimeout(5000, done);
    socket.on("data", (d) => {
      got += d;
      if (got.includes("\r\n")) done();
    });
    socket.on("error", done);
    socket.on("close", done);
    socket.write(text);
  });
}

describe("R7 malformed HTTP input", () => {
  let api: Api;
  before(async () => {
    api = await startApi({ bodyLimit: BODY_LIMIT });
  });
  after(() => api.stop());

  it(`answers ${RUNS} generated malformed requests below 500, each with its status and a stable code`, { timeout: Math.max(120_000, RUNS * 10) }, async () => {
    const statuses = new Map<string, number>();
    let clientErrors = 0;
    const causes = new Map<string, number>();
    const send = async (c: Case): Promise<number> => {
      if (c.raw !== undefined) {
        const status = await sendRaw(api.url, c.raw);
        statuses.set(`raw ${status}`, (statuses.get(`raw ${status}`) ?? 0) + 1);
        return status;
      }
      const init = { method: c.method, headers: c.headers, ...(c.body !== undefined ? { body: c.body } : {}) };
      let res: Response;
      try {
        res = await fetch(api.url + c.path, init);
      } catch (err) {
        // The server closes connections after refusing (413, 431). A request sent on a pooled
        // connection the server is closing fails on the client's side: retry once, like any
        // HTTP client; a second failure fails the test.
        clientErrors++;
        const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
        causes.set(cause, (causes.get(cause) ?? 0) + 1);
        try {
          res = await fetch(api.url + c.path, init);
        } catch (again) {
          if (c.kind === "oversized" || c.kind === "huge-header") return c.allowed[0]!; // cut mid-send, as allowed
          throw new Error(`${c.kind}: the request failed twice (${cause}; ${String((again as { cause?: unknown }).cause ?? again)})`);
        }
      }
      const type = res.headers.get("content-type") ?? "";
      if (res.status >= 400 && type.startsWith("application/json")) {
        const body = (await res.json()) as { error?: { code?: string; message?: string } };
        assert.ok(body.error && KNOWN_CODES.has(body.error.code ?? ""), `${c.kind}: unknown error code in ${JSON.stringify(body).slice(0, 200)}`);
        assert.equal(typeof body.error.message, "string");
        statuses.set(`${res.status} ${body.error.code}`, (statuses.get(`${res.status} ${body.error.code}`) ?? 0) + 1);
      } else {
        await res.body?.cancel();
        statuses.set(String(res.status), (statuses.get(String(res.status)) ?? 0) + 1);
      }
      return res.status;
    };

    // Warm up, then take the heap baseline.
    for (const c of fc.sample(cases, 200)) await send(c);
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const started = performance.now();
    // Each run sends a batch of requests at once, as concurrent clients would.
    const failures: string[] = [];
    const property = fc.assert(
      fc.asyncProperty(fc.array(cases, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        await Promise.all(
          batch.map(async (c) => {
            try {
              const status = await send(c);
              assert.ok(status < 500, `${c.kind} answered ${status}`);
              assert.ok(c.allowed.includes(status), `${c.kind} answered ${status}, expected one of ${c.allowed.join(", ")}`);
            } catch (err) {
              failures.push(`${c.kind}: ${(err as Error).message}`.slice(0, 500));
              throw err;
            }
          }),
        );
      }),
      { numRuns: Math.ceil(RUNS / BATCH), seed: process.env.FERRY_R7_SEED ? Number(process.env.FERRY_R7_SEED) : undefined },
    );
    // fast-check's report leads with the (long) counterexample: name the first failure plainly.
    await property.catch((err: unknown) => {
      throw new Error(`R7 failed: ${failures[0] ?? "(no request failed)"}`, { cause: err });
    });
    const seconds = (performance.now() - started) / 1000;
    gc();
    const growth = process.memoryUsage().heapUsed - heapBefore;

    // Alive: health, a valid enqueue, and its status.
    const health = await fetch(`${api.url}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    const ok = await api.call("POST", "/v1/tasks/math.add", { body: { payload: { a: 1, b: 2 } } });
    assert.equal(ok.status, 202);
    const { statusUrl } = (await ok.json()) as { statusUrl: string };
    assert.equal((await api.call("GET", statusUrl)).status, 200);
    // Bounded: the idempotency memory and the heap.
    assert.ok(appInternals(api.server.app).idempotency.size <= 10_000);
    assert.ok(growth < 64 * 1024 * 1024, `heap grew by ${(growth / 1048576).toFixed(1)} MiB`);

    const summary = [...statuses].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}: ${n}`).join(", ");
    console.log(`R7: ${Math.ceil(RUNS / BATCH) * BATCH} requests in ${seconds.toFixed(1)} s (${(RUNS / seconds).toFixed(0)}/s), 0 answers >= 500, heap growth ${(growth / 1048576).toFixed(1)} MiB, client-side connection errors retried ${clientErrors} (${[...causes].map(([k, n]) => `${k}: ${n}`).join(", ") || "none"}); ${summary}`);
  });
});
