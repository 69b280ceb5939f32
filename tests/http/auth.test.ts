/**
 * R9 over real HTTP: every route in the route table answers 401 without a
 * token (so a new route cannot be left open), admin routes answer 403 to a read
 * token, tokens never travel in URLs, the server refuses to listen beyond
 * loopback with no token, and cross-site requests are refused.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createFerry, MemoryTransport } from "../../src/index.ts";
import { resolveTokens, TokenChecker } from "../../src/http/auth.ts";
import { OPEN_ROUTES, serve } from "../../src/http/server.ts";
import { ADMIN_TOKEN, errorCode, READ_TOKEN, startApi, type Api } from "./http-support.ts";

/** Routes that need the admin scope. Any other route must work with a read token. */
const ADMIN_ROUTES = ["POST /v1/dead/:id/replay", "DELETE /v1/dead/:id", "POST /v1/channels/:channel/pause", "POST /v1/channels/:channel/resume"];

const PARAMS: Record<string, string> = { name: "math.add", id: "01a2015e-2112-7000-bec8-784ba7f7789c", channel: "default" };
const concrete = (path: string) => path.replace(/:(\w+)/g, (_, p: string) => PARAMS[p] ?? "x");

describe("HTTP authentication (R9)", () => {
  let api: Api;
  let routes: Array<{ method: string; path: string }>;
  before(async () => {
    api = await startApi();
    routes = (api.server.app.routes as Array<{ method: string; path: string }>).filter((r) => r.method !== "ALL").map((r) => ({ method: r.method, path: r.path }));
  });
  after(() => api.stop());

  it("walks a route table that holds every documented route", () => {
    const keys = routes.map((r) => `${r.method} ${r.path}`);
    for (const expected of ["POST /v1/tasks/:name", "POST /v1/events/:name", "GET /v1/messages/:id", "GET /v1/messages/:id/events", "GET /v1/stream", "GET /metrics", "GET /v1/openapi.json", "GET /healthz", ...ADMIN_ROUTES]) {
      assert.ok(keys.includes(expected), `route ${expected} is missing from the table`);
    }
  });

  it("answers 401 on every route without a token, except the deliberate open ones", async () => {
    for (const { method, path } of routes) {
      const key = `${method} ${path}`;
      const res = await api.call(method, concrete(path), { token: null, ...(method === "POST" ? { body: { payload: {} } } : {}) });
      if (OPEN_ROUTES.includes(key)) {
        assert.equal(res.status, 200, key);
        await res.body?.cancel();
        continue;
      }
      assert.equal(res.status, 401, key);
      assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="ferry"', key);
      assert.equal(await errorCode(res), "UNAUTHORIZED", key);
    }
  });

  it("answers 401 to a wrong token, a non-Bearer scheme, and a token in the query string", async () => {
    for (const { method, path } of routes) {
      if (OPEN_ROUTES.includes(`${method} ${path}`)) continue;
      const wrong = await api.call(method, concrete(path), { token: "not-the-token-0123456789" });
      assert.equal(wrong.status, 401, `${method} ${path} wrong token`);
      await wrong.body?.cancel();
    }
    const basic = await api.call("GET", "/v1/openapi.json", { token: null, headers: { authorization: `Basic ${Buffer.from(`x:${READ_TOKEN}`).toString("base64")}` } });
    assert.equal(basic.status, 401);
    await basic.body?.cancel();
    for (const name of ["access_token", "token"]) {
      const res = await api.call("GET", `/v1/openapi.json?${name}=${READ_TOKEN}`, { token: null });
      assert.equal(res.status, 401);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, /never accepted in the URL/);
      // Even with a valid header, a token in the URL is refused.
      const both = await api.call("GET", `/v1/openapi.json?${name}=${READ_TOKEN}`);
      assert.equal(both.status, 401);
      await both.body?.cancel();
    }
  });

  it("answers 401 on unknown paths without a token (no route probing)", async () => {
    const res = await api.call("GET", "/v1/secret-admin-thing", { token: null });
    assert.equal(res.status, 401);
    await res.body?.cancel();
    const withToken = await api.call("GET", "/v1/secret-admin-thing");
    assert.equal(withToken.status, 404);
    assert.equal(await errorCode(withToken), "NOT_FOUND");
  });

  it("answers 403 on admin routes to a read token, and lets read routes through", async () => {
    for (const { method, path } of routes) {
      const key = `${method} ${path}`;
      const res = await api.call(method, concrete(path), method === "POST" ? { body: { payload: { a: 1, b: 2 } } } : {});
      if (ADMIN_ROUTES.includes(key)) {
        assert.equal(res.status, 403, key);
        assert.equal(await errorCode(res), "FORBIDDEN", key);
      } else {
        assert.ok(res.status !== 401 && res.status !== 403, `${key} answered ${res.status} to a read token`);
        await res.body?.cancel();
      }
    }
  });

  it("lets an admin token through admin routes", async () => {
    const res = await api.call("POST", "/v1/channels/default/pause", { token: ADMIN_TOKEN });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { channel: "default", paused: true });
    const resumed = await api.call("POST", "/v1/channels/default/resume", { token: ADMIN_TOKEN });
    assert.deepEqual(await resumed.json(), { channel: "default", paused: false });
  });

  it("refuses cross-site requests and form posts on admin routes", async () => {
    const site = await api.call("POST", "/v1/channels/default/pause", { token: ADMIN_TOKEN, headers: { "sec-fetch-site": "cross-site" } });
    assert.equal(site.status, 403);
    assert.equal(await errorCode(site), "CROSS_SITE");
    const origin = await api.call("POST", "/v1/tasks/math.add", { body: { payload: { a: 1, b: 1 } }, headers: { origin: "https://evil.example" } });
    assert.equal(origin.status, 403);
    assert.equal(await errorCode(origin), "CROSS_SITE");
    const form = await api.call("POST", "/v1/channels/default/pause", { token: ADMIN_TOKEN, body: "a=1", headers: { "content-type": "application/x-www-form-urlencoded" } });
    assert.equal(form.status, 415);
    assert.equal(await errorCode(form), "UNSUPPORTED_MEDIA_TYPE");
  });
});

describe("HTTP token configuration", () => {
  it("refuses to listen beyond loopback without a token", async () => {
    const ferry = createFerry({ transport: new MemoryTransport() });
    await assert.rejects(serve(ferry, { host: "0.0.0.0", port: 0, tokens: {} }), (e: unknown) => (e as { code?: string }).code === "CONFIG_INVALID");
    await ferry.close();
  });

  it("serves loopback without a token (open mode) and says so", async () => {
    const ferry = createFerry({ transport: new MemoryTransport() });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    const server = await serve(ferry, { port: 0, tokens: {} });
    const res = await fetch(`${server.url}/v1/openapi.json`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
    // DNS rebinding: a foreign Host is refused in open mode.
    const { port } = new URL(server.url);
    const status = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port: Number(port) }, () => socket.write("GET /v1/openapi.json HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"));
      let got = "";
      socket.setEncoding("utf8");
      socket.on("data", (d) => (got += d));
      socket.on("end", () => resolve(got.split("\r\n")[0]!));
      socket.on("error", reject);
    });
    assert.match(status, /^HTTP\/1\.1 403/);
    await server.close();
    await ferry.close();
    await new Promise((r) => setImmediate(r));
    process.off("warning", onWarning);
    assert.ok(warnings.some((w) => /no API token/.test(w)));
  });

  it("refuses short or spaced tokens without echoing them", () => {
    assert.throws(() => new TokenChecker({ read: ["short"] }), (e: unknown) => (e as { code?: string }).code === "CONFIG_INVALID" && !(e as Error).message.includes("short"));
    assert.throws(() => new TokenChecker({ admin: ["has a space in it 0123456789"] }), (e: unknown) => (e as { code?: string }).code === "CONFIG_INVALID");
  });

  it("reads tokens from the environment and a file (JSON or lines), admin implying read", () => {
    const dir = mkdtempSync(join(tmpdir(), "ferry-tokens-"));
    try {
      const json = join(dir, "tokens.json");
      writeFileSync(json, JSON.stringify({ read: ["file-read-0123456789"], admin: ["file-admin-0123456789"] }));
      const lines = join(dir, "tokens.txt");
      writeFileSync(lines, "# tokens\nread  lines-read-0123456789\nadmin lines-admin-0123456789\n");
      const fromEnv = resolveTokens(undefined, { FERRY_TOKEN: "env-read-0123456789, env-read2-0123456789", FERRY_ADMIN_TOKEN: "env-admin-0123456789", FERRY_TOKENS_FILE: json });
      assert.deepEqual(fromEnv, { read: ["env-read-0123456789", "env-read2-0123456789", "file-read-0123456789"], admin: ["env-admin-0123456789", "file-admin-0123456789"] });
      const checker = new TokenChecker(resolveTokens(undefined, { FERRY_TOKENS_FILE: lines }));
      assert.equal(checker.scopeOf("lines-read-0123456789"), "read");
      assert.equal(checker.scopeOf("lines-admin-0123456789"), "admin");
      assert.equal(checker.scopeOf("lines-admin-012345678"), undefined);
      writeFileSync(lines, "superuser x\n");
      assert.throws(() => resolveTokens(undefined, { FERRY_TOKENS_FILE: lines }), (e: unknown) => (e as { code?: string }).code === "CONFIG_INVALID");
      // Explicit tokens win over the environment.
      assert.deepEqual(resolveTokens({ read: ["x-read-0123456789abc"] }, { FERRY_TOKEN: "env-read-0123456789" }), { read: ["x-read-0123456789abc"], admin: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
