import assert from "node:assert/strict";
import { it } from "node:test";
import * as local from "../../src/testing/index.ts";

it('"ferry/testing" resolves to the testing helpers', async () => {
  const pkg = await import("ferry/testing");
  assert.equal(pkg.createTestFerry, local.createTestFerry);
  const ferry = pkg.createTestFerry();
  assert.equal(typeof ferry.drain, "function");
  await ferry.close();
});
