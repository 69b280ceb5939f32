import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createEnvelope } from "../core/envelope.ts";
import { EventStream, type TransportCall } from "../core/events.ts";
import { FerryError } from "../core/errors.ts";
import { instrument } from "./instrumented.ts";
import { MemoryTransport } from "./memory/memory-transport.ts";

const msg = (channel: string) => createEnvelope({ name: "t", channel, payload: { n: 1 } });

describe("instrument", () => {
  it("reports each core call, with its count, when someone listens", async () => {
    const events = new EventStream();
    const t = instrument(new MemoryTransport(), events);
    const calls: TransportCall[] = [];
    const stop = events.on("transport:call", (c) => calls.push(c));
    await t.send([msg("a"), msg("a")]);
    const got = await t.receive({ channels: ["a"], max: 10, leaseMs: 30_000, waitMs: 0 });
    await t.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
    assert.deepEqual(
      calls.map((c) => [c.transport, c.op, c.count, c.error]),
      [
        ["memory", "send", 2, undefined],
        ["memory", "receive", 2, undefined],
        ["memory", "ack", 2, undefined],
      ],
    );
    assert.ok(calls.every((c) => c.durationMs >= 0));
    stop();
    await t.send([msg("a")]);
    assert.equal(calls.length, 3, "no event once no one listens");
  });

  it("reports a failed call with its error, and rejects with it", async () => {
    const events = new EventStream();
    const t = instrument(new MemoryTransport(), events);
    const calls: TransportCall[] = [];
    events.on("transport:call", (c) => calls.push(c));
    await t.close();
    await assert.rejects(t.send([msg("a")]), (err: unknown) => err instanceof FerryError && err.code === "TRANSPORT_CLOSED");
    assert.equal(calls.length, 1);
    assert.deepEqual([calls[0]!.op, calls[0]!.count], ["send", 1]);
    assert.ok(calls[0]!.error instanceof FerryError);
  });

  it("turns a method that throws before its promise exists into a rejection, listened to or not", async () => {
    const inner = new MemoryTransport();
    const boom = new Error("thrown synchronously");
    inner.send = () => {
      throw boom;
    };
    const events = new EventStream();
    const t = instrument(inner, events);
    const quiet = t.send([msg("a")]);
    assert.ok(quiet instanceof Promise, "a promise, not a throw");
    await assert.rejects(quiet, boom);
    events.on("transport:call", () => {});
    await assert.rejects(t.send([msg("a")]), boom);
  });

  it("passes optional capabilities and close through with the transport as this", async () => {
    const inner = new MemoryTransport();
    const t = instrument(inner, new EventStream());
    await t.send([msg("c")]);
    assert.equal((await inner.counts())[0]?.waiting, 1);
    assert.deepEqual(await t.counts(), await inner.counts());
    await t.close();
    await assert.rejects(inner.send([msg("c")]), (err: unknown) => err instanceof FerryError && err.code === "TRANSPORT_CLOSED");
  });
});
