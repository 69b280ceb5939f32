/**
 * Each refusal of the HTTP API over real HTTP: its status and stable code, and
 * that nothing was enqueued or polluted on the way.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { isInspectable } from "../../src/index.ts";
import { errorCode, startApi, type Api } from "./http-support.ts";

async function waitingCount(api: Api): Promise<number> {
  const t = await api.ferry.transport("default");
  if (!isInspectable(t)) throw new Error("sqlite is inspectable");
  return (await t.counts()).reduce((n, c) => n + c.waiting, 0);
}

/** Send raw bytes and return the status line of the answer. */
function raw(url: string, text: string, body?: AsyncIterable<string>): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let got = "";
    socket.setEncoding("utf8");
    socket.on("data", (d) => {
      got += d;
      if (got.includes("\r\n")) {
        resolve(got.split("\r\n")[0]!);
        socket.destroy();
      }
    });
    socket.on("error", (err) => (got ? resolve(got.split("\r\n")[0]!) : reject(err)));
    socket.on("close", () => resolve(got.split("\r\n")[0] ?? ""));
    socket.write(text);
    if (body) {
      void (async () => {
        for await (const chunk of body) if (!socket.destroyed) socket.write(chunk);
      })().catch(() => undefined);
    }
  });
}

describe("HTTP rejections", () => {
  let api: Api;
  before(async () => {
    api = await startApi({ bodyLimit: 64 * 1024, maxDepth: 8, maxKeys: 50 });
  });
  after(() => api.stop());

  const post = (body: string, headers: Record<string, string> = {}, path = "/v1/tasks/math.add") => api.call("POST", path, { body, headers });
  const expect = async (res: Response, status: number, code: string) => {
    assert.equal(res.status, status, `expected ${status} ${code}`);
    assert.equal(await errorCode(res), code);
  };

  it("415 for a non-JSON content type, a form, or a foreign charset", async () => {
    await expect(await post('{"payload":{"a":1,"b":2}}', { "content-type": "text/plain" }), 415, "UNSUPPORTED_MEDIA_TYPE");
    await expect(await post("payload=1", { "content-type": "application/x-www-form-urlencoded" }), 415, "UNSUPPORTED_MEDIA_TYPE");
    await expect(await post("--x--", { "content-type": "multipart/form-data; boundary=x" }), 415, "UNSUPPORTED_MEDIA_TYPE");
    await expect(await post('{"payload":{"a":1,"b":2}}', { "content-type": "application/json; charset=latin1" }), 415, "UNSUPPORTED_MEDIA_TYPE");
    const ok = await post('{"payload":{"a":1,"b":2}}', { "content-type": "application/json; charset=UTF-8" });
    assert.equal(ok.status, 202);
    await ok.body?.cancel();
  });

  it("413 from Content-Length before reading, and while streaming a chunked body", async () => {
    const before = await waitingCount(api);
    await expect(await post(JSON.stringify({ payload: { a: 1, b: 2, pad: "x".repeat(70_000) } })), 413, "BODY_TOO_LARGE");
    // A declared length over the limit is answered before any body byte is sent.
    const line = await raw(api.url, `POST /v1/tasks/math.add HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer read-token-0123456789abcdef\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n`);
    assert.match(line, /^HTTP\/1\.1 413/);
    // A chunked body with no length is cut once it passes the limit.
    async function* chunks() {
      yield '{"payload":{"a":1,"b":2,"pad":"';
      for (let i = 0; i < 200; i++) {
        yield "y".repeat(1024);
        await new Promise((r) => setImmediate(r));
      }
    }
    const encoded = (async function* () {
      for await (const c of chunks()) yield `${c.length.toString(16)}\r\n${c}\r\n`;
    })();
    const chunkedLine = await raw(api.url, `POST /v1/tasks/math.add HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer read-token-0123456789abcdef\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`, encoded);
    assert.match(chunkedLine, /^HTTP\/1\.1 413/);
    assert.equal(await waitingCount(api), before, "nothing was enqueued");
  });

  it("400 INVALID_JSON for broken JSON, an empty body, bad UTF-8 and lone surrogates", async () => {
    await expect(await post('{"payload":'), 400, "INVALID_JSON");
    await expect(await post(""), 400, "INVALID_JSON");
    await expect(await post("{'payload':1}"), 400, "INVALID_JSON");
    await expect(await post('{"payload":NaN}'), 400, "INVALID_JSON");
    const badUtf8 = await fetch(`${api.url}/v1/tasks/math.add`, { method: "POST", headers: { authorization: "Bearer read-token-0123456789abcdef", "content-type": "application/json" }, body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]) });
    await expect(badUtf8, 400, "INVALID_JSON");
    await expect(await post('{"payload":{"a":1,"b":2,"c":"\\ud800"}}'), 400, "INVALID_JSON");
    await expect(await post('{"payload":{"a":1,"b":2,"\\udfff":1}}'), 400, "INVALID_JSON");
  });

  it("NUL characters are accepted and round-trip unchanged", async () => {
    const res = await post(JSON.stringify({ payload: { a: 1, b: 2, note: "a\u0000b" } }));
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    const t = await api.ferry.transport("default");
    assert.ok(isInspectable(t));
    assert.deepEqual((await t.get(id))!.message.payload, { a: 1, b: 2, note: "a\u0000b" });
  });

  it("400 TOO_DEEP and TOO_MANY_KEYS before parsing", async () => {
    await expect(await post(`{"payload":${"[".repeat(20)}${"]".repeat(20)}}`), 400, "TOO_DEEP");
    await expect(await post(`{"payload":${"[".repeat(60_000)}`), 400, "TOO_DEEP");
    const many = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, i]));
    await expect(await post(JSON.stringify({ payload: { a: 1, b: 2, ...many } })), 400, "TOO_MANY_KEYS");
    // Brackets and colons inside strings do not count.
    const res = await post(JSON.stringify({ payload: { a: 1, b: 2, s: "[[[[[[[[[[[[:::::::::::::::::::::::::::::::::::::::::::::::::::::::::" } }));
    assert.equal(res.status, 202);
    await res.body?.cancel();
  });

  it("400 FORBIDDEN_KEY for __proto__, plain or escaped, and nothing is polluted", async () => {
    await expect(await post('{"payload":{"a":1,"b":2,"__proto__":{"polluted":true}}}'), 400, "FORBIDDEN_KEY");
    await expect(await post('{"payload":{"a":1,"b":2,"x":[{"\\u005f_proto__":{"polluted":true}}]}}'), 400, "FORBIDDEN_KEY");
    await expect(await post('{"__proto__":{"polluted":true},"payload":{"a":1,"b":2}}'), 400, "FORBIDDEN_KEY");
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it("400 INVALID_PAYLOAD with the issues when the payload fails its schema", async () => {
    const res = await post(JSON.stringify({ payload: { a: "one" } }));
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; details: { issues: Array<{ path: string }> } } };
    assert.equal(body.error.code, "INVALID_PAYLOAD");
    assert.deepEqual(body.error.details.issues.map((i) => i.path).sort(), ["a", "b"]);
    await expect(await post(JSON.stringify({ notPayload: 1 })), 400, "INVALID_OPTION");
    await expect(await post(JSON.stringify({})), 400, "INVALID_PAYLOAD");
    await expect(await post(JSON.stringify([1, 2])), 400, "INVALID_PAYLOAD");
    await expect(await post("42"), 400, "INVALID_PAYLOAD");
  });

  it("400 INVALID_OPTION for negative, non-numeric or huge delays and bad options", async () => {
    for (const body of [
      { payload: { a: 1, b: 2 }, delay: -1 },
      { payload: { a: 1, b: 2 }, delay: "NaN" },
      { payload: { a: 1, b: 2 }, delay: "-5s" },
      { payload: { a: 1, b: 2 }, delay: 1e300 },
      { payload: { a: 1, b: 2 }, delay: {} },
      { payload: { a: 1, b: 2 }, delay: "1s", runAt: 5 },
      { payload: { a: 1, b: 2 }, runAt: "yesterday" },
      { payload: { a: 1, b: 2 }, runAt: -5 },
      { payload: { a: 1, b: 2 }, priority: 1.5 },
      { payload: { a: 1, b: 2 }, priority: 5000 },
      { payload: { a: 1, b: 2 }, maxAttempts: 0 },
      { payload: { a: 1, b: 2 }, correlationId: 7 },
      { payload: { a: 1, b: 2 }, channel: "elsewhere" },
    ]) {
      const res = await post(JSON.stringify(body));
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(await errorCode(res), "INVALID_OPTION", JSON.stringify(body));
    }
  });

  it("400 INVALID_NAME for bad names, 404 UNKNOWN_TASK for unknown tasks, 400 INVALID_ID for bad ids", async () => {
    await expect(await post('{"payload":1}', {}, "/v1/tasks/bad%20name"), 400, "INVALID_NAME");
    await expect(await post('{"payload":1}', {}, "/v1/tasks/..%2F..%2Fetc"), 400, "INVALID_NAME");
    await expect(await post('{"payload":1}', {}, "/v1/tasks/%00"), 400, "INVALID_NAME");
    await expect(await post('{"payload":1}', {}, `/v1/tasks/${"a".repeat(201)}`), 400, "INVALID_NAME");
    await expect(await post('{"payload":1}', {}, "/v1/events/order.*"), 400, "INVALID_NAME");
    await expect(await post('{"payload":1}', {}, "/v1/tasks/no.such.task"), 404, "UNKNOWN_TASK");
    await expect(await api.call("GET", "/v1/messages/no'such"), 400, "INVALID_ID");
    await expect(await api.call("GET", `/v1/messages/${"a".repeat(65)}`), 400, "INVALID_ID");
    await expect(await api.call("GET", "/v1/messages/01a2015e-2112-7000-bec8-000000000000"), 404, "NOT_FOUND");
    await expect(await api.call("GET", "/v1/messages/01a2015e-2112-7000-bec8-000000000000/events"), 404, "NOT_FOUND");
  });

  it("431 for huge headers, from Node, never a 5xx", async () => {
    const res = await api.call("GET", "/v1/openapi.json", { headers: { "x-big": "z".repeat(32 * 1024) } });
    assert.equal(res.status, 431);
    await res.body?.cancel();
  });
});

describe("HTTP stream limits", () => {
  it("429 TOO_MANY_STREAMS past sse.maxStreams, and close() ends open streams", async () => {
    const api = await startApi({ sse: { maxStreams: 1 } });
    const first = await api.call("GET", "/v1/stream");
    assert.equal(first.status, 200);
    const second = await api.call("GET", "/v1/stream?channel=emails");
    assert.equal(second.status, 429);
    assert.equal(await errorCode(second), "TOO_MANY_STREAMS");
    const reading = first.text();
    await api.stop(); // must not hang on the open stream
    assert.match(await reading, /event: ready/);
  });
});
