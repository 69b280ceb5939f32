/**
 * `rediss://` with a password, against a real Redis: a private redis-server started
 * here with TLS only and `requirepass`, on a free loopback port, with a certificate
 * made for the run by openssl (both ended and removed afterwards). Without
 * redis-server or openssl the tests skip with the reason; under `CI=true` they fail.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { createEnvelope } from "../../core/envelope.ts";
import { isFerryError } from "../../core/errors.ts";
import { RedisTransport } from "./redis-transport.ts";

const PASSWORD = "tls-test-secret-4f9a";

function missingTool(): string | undefined {
  for (const [tool, args] of [["redis-server", ["--version"]], ["openssl", ["version"]]] as const) {
    if (spawnSync(tool, [...args]).status !== 0) {
      const message = `${tool} is not installed; the rediss:// tests need it to start a TLS Redis of their own`;
      if (process.env.CI === "true") throw new Error(`CI: ${message}`);
      return message;
    }
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once a TLS handshake with the server succeeds (the server is up), or rejects after `ms`. */
async function tlsReady(port: number, ca: Buffer, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = tlsConnect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
        socket.end();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`the TLS Redis on port ${port} did not come up within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const skip = missingTool();

describe("redis transport over TLS with a password (rediss://)", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "ferry-redis-tls-"));
  let server: ChildProcess | undefined;
  let port = 0;
  let ca: Buffer;

  before(async () => {
    const made = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")]);
    assert.equal(made.status, 0, `openssl could not make a certificate: ${made.stderr?.toString()}`);
    ca = readFileSync(join(dir, "cert.pem"));
    port = await freePort();
    server = spawn("redis-server", ["--port", "0", "--tls-port", String(port), "--bind", "127.0.0.1",
      "--tls-cert-file", join(dir, "cert.pem"), "--tls-key-file", join(dir, "key.pem"), "--tls-ca-cert-file", join(dir, "cert.pem"),
      "--tls-auth-clients", "no", "--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
    await tlsReady(port, ca, 10_000);
  });

  after(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once("exit", r));
      server.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("sends, receives and acks through rediss:// with the password from the URL, on the database it names", async () => {
    const t = await RedisTransport.open({ url: `rediss://:${PASSWORD}@127.0.0.1:${port}/3`, prefix: "ferry-tls", redis: { tls: { ca, servername: "localhost" } }, onWarning: () => {} });
    try {
      const m = createEnvelope({ name: "tls.task", channel: "tls", payload: { over: "tls" } });
      assert.deepEqual(await t.send([m]), [{ id: m.id, deduplicated: false }]);
      const got = await t.receive({ channels: ["tls"], max: 5, leaseMs: 30_000, waitMs: 1000 });
      assert.deepEqual(got.map((d) => d.message.payload), [{ over: "tls" }]);
      assert.deepEqual(await t.ack(got.map((d) => ({ id: d.message.id, token: d.token }))), [true]);
      assert.equal((await t.get(m.id))?.state, "completed");
    } finally {
      await t.close();
    }
    // The URL's database was used: the keys are in db 3, not db 0.
    const check = await RedisTransport.open({ url: `rediss://:${PASSWORD}@127.0.0.1:${port}/0`, prefix: "ferry-tls", redis: { tls: { ca, servername: "localhost" } }, onWarning: () => {} });
    try {
      assert.deepEqual(await check.counts(), [], "db 0 holds nothing of it");
    } finally {
      await check.close();
    }
  });

  it("a wrong password fails to open with TRANSPORT_UNAVAILABLE, and the message does not repeat the password", async () => {
    const wrong = "not-the-password-77";
    await assert.rejects(
      RedisTransport.open({ url: `rediss://:${wrong}@127.0.0.1:${port}/0`, redis: { tls: { ca, servername: "localhost" } }, onWarning: () => {} }),
      (err: unknown) => isFerryError(err, "TRANSPORT_UNAVAILABLE") && /WRONGPASS|invalid username-password/i.test((err as Error).message) && !(err as Error).message.includes(wrong),
    );
  });

  it("plain redis:// to the TLS port fails to open with TRANSPORT_UNAVAILABLE, not a hang", async () => {
    await assert.rejects(
      RedisTransport.open({ url: `redis://:${PASSWORD}@127.0.0.1:${port}/0`, onWarning: () => {} }),
      (err: unknown) => isFerryError(err, "TRANSPORT_UNAVAILABLE") && !(err as Error).message.includes(PASSWORD),
    );
  });
});
