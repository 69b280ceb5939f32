/**
 * createEnvelopes (what dispatchMany makes its messages with) gives the same
 * envelopes as createEnvelope one at a time: a new id each, its own headers
 * object, correlationId its own id unless one was given, and every field checked.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkEnvelope, createEnvelope, createEnvelopes, decodeEnvelope, encodeEnvelope, isFerryError, newId } from "../../src/index.ts";

describe("createEnvelopes", () => {
  it("makes one checked envelope per payload, as createEnvelope would", () => {
    const now = 1_765_000_000_000;
    const init = { name: "mail.send", channel: "mail", headers: { tenant: "a" }, priority: 5, maxAttempts: 4, runAt: now + 10 };
    const made = createEnvelopes(init, [{ n: 1 }, { n: 2 }, null], now);
    assert.equal(made.length, 3);
    assert.equal(new Set(made.map((e) => e.id)).size, 3, "a new id each");
    assert.deepEqual([...made.map((e) => e.id)].sort(), made.map((e) => e.id), "ids in creation order");
    for (const [i, e] of made.entries()) {
      checkEnvelope(e);
      const single = createEnvelope({ ...init, id: e.id, payload: [{ n: 1 }, { n: 2 }, null][i] }, now);
      assert.deepEqual(e, single);
      assert.equal(e.headers.correlationId, e.id);
      assert.deepEqual(decodeEnvelope(encodeEnvelope(e), now), e, "round-trips the wire format");
    }
    assert.notEqual(made[0]!.headers, made[1]!.headers, "each message has its own headers object");
    const shared = createEnvelopes({ ...init, headers: { correlationId: "flow-1" } }, [1, 2], now);
    assert.deepEqual(shared.map((e) => e.headers.correlationId), ["flow-1", "flow-1"]);
  });

  it("refuses bad fields and an undefined payload, and makes nothing for no payloads", () => {
    assert.deepEqual(createEnvelopes({ name: "t", channel: "c" }, []), []);
    assert.throws(() => createEnvelopes({ name: "t", channel: "bad channel" }, [1]), (err: unknown) => isFerryError(err, "INVALID_NAME"));
    assert.throws(() => createEnvelopes({ name: "t", channel: "c", priority: 2000 }, [1]), (err: unknown) => isFerryError(err, "INVALID_MESSAGE"));
    assert.throws(() => createEnvelopes({ name: "t", channel: "c" }, [1, undefined]), (err: unknown) => isFerryError(err, "INVALID_MESSAGE"));
  });

  it("newId keeps ids made in one millisecond in order and in UUIDv7 form", () => {
    const ids = Array.from({ length: 5000 }, () => newId(1_765_000_000_000));
    assert.deepEqual([...ids].sort(), ids);
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("newId's first 48 bits are its millisecond, then the counter (run last: later ids keep that far-off millisecond)", () => {
    const at = 4_102_444_800_123; // 2100-01-01, after any id made before it
    const [a, b] = [newId(at), newId(at)];
    assert.equal(parseInt(a.slice(0, 8) + a.slice(9, 13), 16), at);
    assert.equal(a.slice(14, 18), "7000");
    assert.equal(b.slice(0, 18), a.slice(0, 13) + "-7001");
  });
});
