/**
 * RunControl: the worker's per-run abort handle whose AbortSignal is made on
 * first read, and whenAborted, the runner's listener for it and for a plain
 * AbortController.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RunControl, whenAborted } from "../../src/worker/run-control.ts";
import { runHandler } from "../../src/worker/outcome.ts";
import { defineTask } from "../../src/index.ts";

describe("RunControl", () => {
  it("hands out a live signal that fires on abort, with the reason", () => {
    const control = new RunControl();
    const signal = control.signal;
    assert.equal(signal.aborted, false);
    assert.equal(control.signal, signal, "the same signal on every read");
    let heard: unknown;
    signal.addEventListener("abort", () => (heard = signal.reason));
    const reason = new Error("stop");
    control.abort(reason);
    assert.equal(heard, reason);
    assert.equal(control.aborted, true);
    assert.equal(control.reason, reason);
    control.abort(new Error("again"));
    assert.equal(control.reason, reason, "the first reason stays");
  });

  it("gives an already aborted signal when first read after the abort", () => {
    const control = new RunControl();
    const reason = new Error("timed out");
    control.abort(reason);
    assert.equal(control.signal.aborted, true);
    assert.equal(control.signal.reason, reason);
    const plain = new RunControl();
    plain.abort();
    assert.equal((plain.reason as DOMException).name, "AbortError");
  });

  it("whenAborted calls back once, at once when already aborted, and not after it stopped listening", () => {
    for (const make of [() => new RunControl(), () => new AbortController()]) {
      const a = make();
      const heard: unknown[] = [];
      whenAborted(a, (r) => heard.push(r));
      a.abort("first");
      a.abort("second");
      assert.deepEqual(heard, ["first"]);

      const b = make();
      b.abort("before");
      const late: unknown[] = [];
      whenAborted(b, (r) => late.push(r));
      assert.deepEqual(late, ["before"]);

      const c = make();
      const none: unknown[] = [];
      whenAborted(c, (r) => none.push(r))();
      c.abort("after stop");
      assert.deepEqual(none, []);
    }
  });

  it("ends a run that ignores its signal when the timeout fires, without the signal ever being read", async () => {
    const task = defineTask("control.hang", { timeout: "50ms", run: () => new Promise(() => {}) });
    const control = new RunControl();
    const ctx = { id: "x", task: task.name, channel: "default", attempt: 1, maxAttempts: 1, headers: {}, get signal() { return control.signal; }, sync: false };
    await assert.rejects(runHandler(task, {}, ctx, control), (err: Error & { code?: string }) => err.code === "TIMEOUT");
    assert.equal(control.aborted, true);
  });
});
