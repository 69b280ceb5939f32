/**
 * The TCP fault proxy against a local echo server: pass-through, delay,
 * reset, drop and blackhole each do what R2 relies on.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { FaultProxy } from "./fault-proxy.ts";

let echo: Server;
let echoPort = 0;
const serverSockets = new Set<Socket>();

before(async () => {
  echo = createServer((s) => {
    serverSockets.add(s);
    s.on("close", () => serverSockets.delete(s));
    s.on("error", () => undefined);
    s.pipe(s);
  });
  echo.listen(0, "127.0.0.1");
  await once(echo, "listening");
  echoPort = (echo.address() as { port: number }).port;
});

after(async () => {
  for (const s of serverSockets) s.destroy();
  await new Promise((r) => echo.close(r));
});

async function open(proxy: FaultProxy): Promise<Socket> {
  const socket = connect({ host: "127.0.0.1", port: proxy.port });
  socket.on("error", () => undefined);
  await once(socket, "connect");
  return socket;
}

/** The next data on `socket`, or "timeout" after `ms`. */
function nextData(socket: Socket, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off("data", onData);
      resolve("timeout");
    }, ms);
    const onData = (d: Buffer) => {
      clearTimeout(timer);
      resolve(d.toString());
    };
    socket.once("data", onData);
  });
}

describe("fault proxy", () => {
  it("forwards bytes both ways", async () => {
    const proxy = new FaultProxy({ targetHost: "127.0.0.1", targetPort: echoPort });
    await proxy.start();
    const s = await open(proxy);
    try {
      s.write("hello");
      assert.equal(await nextData(s, 2000), "hello");
    } finally {
      s.destroy();
      await proxy.close();
    }
  });

  it("delays every chunk, keeping order", async () => {
    const proxy = new FaultProxy({ targetHost: "127.0.0.1", targetPort: echoPort });
    await proxy.start();
    const s = await open(proxy);
    try {
      s.write("warm");
      assert.equal(await nextData(s, 2000), "warm");
      proxy.delay(150);
      const sent = Date.now();
      const got: string[] = [];
      s.on("data", (d) => got.push(d.toString()));
      s.write("a");
      setTimeout(() => s.write("b"), 10);
      while (got.join("") !== "ab" && Date.now() - sent < 3000) await new Promise((r) => setTimeout(r, 10));
      assert.equal(got.join(""), "ab");
      // Up and down each add the delay: the echo cannot be back before 2 x 150 ms.
      assert.ok(Date.now() - sent >= 290, `echo came back after ${Date.now() - sent} ms`);
    } finally {
      s.destroy();
      await proxy.close();
    }
  });

  it("reset tears open connections down with ECONNRESET", async () => {
    const proxy = new FaultProxy({ targetHost: "127.0.0.1", targetPort: echoPort });
    await proxy.start();
    const s = connect({ host: "127.0.0.1", port: proxy.port });
    const error = new Promise<NodeJS.ErrnoException>((resolve) => s.once("error", resolve));
    await once(s, "connect");
    s.write("x");
    assert.equal(await nextData(s, 2000), "x");
    proxy.reset();
    assert.equal((await error).code, "ECONNRESET");
    assert.equal(proxy.stats.resets, 1);
    await proxy.close();
  });

  it("drop closes open and new connections until lifted", async () => {
    const proxy = new FaultProxy({ targetHost: "127.0.0.1", targetPort: echoPort });
    await proxy.start();
    const s = await open(proxy);
    const closed = once(s, "close");
    proxy.drop(true);
    await closed;
    const t = connect({ host: "127.0.0.1", port: proxy.port });
    t.on("error", () => undefined);
    await once(t, "close");
    assert.equal(proxy.open, 0);
    proxy.drop(false);
    const u = await open(proxy);
    try {
      u.write("back");
      assert.equal(await nextData(u, 2000), "back");
    } finally {
      u.destroy();
      await proxy.close();
    }
  });

  it("blackhole holds bytes while on and delivers them in order after", async () => {
    const proxy = new FaultProxy({ targetHost: "127.0.0.1", targetPort: echoPort });
    await proxy.start();
    const s = await open(proxy);
    try {
      proxy.blackhole(true);
      s.write("held");
      assert.equal(await nextData(s, 300), "timeout");
      const late = await open(proxy);
      late.write("late");
      assert.equal(await nextData(late, 300), "timeout", "a new connection is not forwarded during a blackhole");
      const both = Promise.all([nextData(s, 2000), nextData(late, 2000)]);
      proxy.blackhole(false);
      assert.deepEqual(await both, ["held", "late"]);
      late.destroy();
    } finally {
      s.destroy();
      await proxy.close();
    }
  });
});
