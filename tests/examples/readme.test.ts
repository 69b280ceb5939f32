/**
 * Every code block of README.md marked `<!-- test: expect "..." -->` runs here as
 * its own program (importing "ferry" and "ferry/testing" as a user would) and
 * must exit 0 and print what the marker expects.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const README = readFileSync(join(ROOT, "README.md"), "utf8");

/** The marked blocks, with what each must print. */
function readmeBlocks(text: string): Array<{ line: number; code: string; expect: string[] }> {
  const out: Array<{ line: number; code: string; expect: string[] }> = [];
  const re = /<!-- test: expect ((?:"[^"]*"\s*)+)-->\n```ts\n([\s\S]*?)\n```/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push({ line: text.slice(0, m.index).split("\n").length, code: m[2]!, expect: [...m[1]!.matchAll(/"([^"]*)"/g)].map((x) => x[1]!) });
  }
  return out;
}

function run(file: string, cwd: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", file], { cwd, env: { ...process.env, FERRY_URL: "" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

describe("README examples", () => {
  const blocks = readmeBlocks(README);
  it("has marked examples", () => assert.ok(blocks.length >= 2, "README.md has at least two tested blocks"));
  for (const block of blocks) {
    it(`the example at README.md line ${block.line} runs and prints ${block.expect.map((e) => JSON.stringify(e)).join(", ")}`, async () => {
      // Inside the repository, so "ferry", "ferry/testing" and "zod" resolve as they do for a user of the package.
      const dir = mkdtempSync(join(ROOT, "tests/examples/.readme-"));
      try {
        const file = join(dir, "example.ts");
        writeFileSync(file, block.code);
        const { code, out, err } = await run(file, dir);
        assert.equal(code, 0, `${out}\n${err}`);
        for (const text of block.expect) assert.ok(out.includes(text), `prints ${JSON.stringify(text)}; got:\n${out}\n${err}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
