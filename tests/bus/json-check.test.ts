/**
 * The payload JSON check: its fast path (no paths built) and its path-reporting
 * walk agree on every value, so the fast path never lets through what the walk
 * would refuse (nor the reverse).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { assertJson, isPlainJson, jsonProblem, MAX_PAYLOAD_DEPTH } from "../../src/core/schema.ts";
import { isFerryError } from "../../src/core/errors.ts";

class Point {
  x = 1;
}

/** Leaves that are fine and leaves that are not. */
const leaf = fc.oneof(
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.double(),
  fc.integer(),
  fc.constant(undefined),
  fc.constant(() => 1),
  fc.constant(Symbol("s")),
  fc.bigInt(),
  fc.date({ noInvalidDate: true }),
  fc.constant(new Point()),
  fc.constant(new Map()),
  fc.constant(Object.create(null) as object),
);

const value = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, tie("array"), tie("object")),
  array: fc.oneof(fc.array(tie("node"), { maxLength: 4 }), fc.sparseArray(tie("node"), { maxLength: 4 })),
  object: fc.dictionary(fc.oneof(fc.string(), fc.constantFrom("__proto__", "constructor", "0")), tie("node"), { maxKeys: 4 }),
})).node;

describe("payload JSON check", () => {
  it("the fast path and the path-reporting walk agree on any value", () => {
    fc.assert(
      fc.property(value, (v) => {
        assert.equal(isPlainJson(v), jsonProblem(v) === undefined);
      }),
      { numRuns: 3000 },
    );
  });

  it("agrees on cycles, repeated (not cyclic) references, and the depth limit", () => {
    const shared = { a: 1 };
    const cyclic: Record<string, unknown> = { a: [1] };
    cyclic.self = { back: cyclic };
    const deep = (n: number): unknown => (n === 0 ? 1 : { d: deep(n - 1) });
    for (const v of [{ x: shared, y: shared }, [shared, shared], cyclic, deep(MAX_PAYLOAD_DEPTH), deep(MAX_PAYLOAD_DEPTH + 1)]) {
      assert.equal(isPlainJson(v), jsonProblem(v) === undefined);
    }
    assert.equal(isPlainJson({ x: shared, y: shared }), true);
    assert.equal(isPlainJson(cyclic), false);
    assert.equal(isPlainJson(deep(MAX_PAYLOAD_DEPTH)), true);
    assert.equal(isPlainJson(deep(MAX_PAYLOAD_DEPTH + 1)), false);
  });

  it("a refused payload says what and where", () => {
    assert.throws(
      () => assertJson({ a: [1, { b: Number.NaN }] }, "payload"),
      (err: unknown) => isFerryError(err, "INVALID_PAYLOAD") && (err as Error).message.includes("non-finite number NaN at (root).a[1].b"),
    );
  });
});
