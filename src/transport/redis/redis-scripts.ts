/**
 * The Lua scripts of the Redis transport. Each `.lua` file in `lua/` opens with
 * its KEYS, ARGV and return values; `lib.lua` (the key layout and shared
 * helpers) is prepended to every one of them. A script runs by its SHA1
 * (`EVALSHA`); when the server does not know it (first use, or after a restart
 * or `SCRIPT FLUSH`) the call is sent again as `EVAL` with the source, which
 * also loads it, so scripts need no reload step of their own.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Command, type Redis } from "ioredis";

/** The names of the scripts, as files in `lua/` (without `.lua`). */
export const SCRIPT_NAMES = ["send", "send-one", "receive", "ack", "retry", "dead", "extend", "replay", "discard", "prune", "retain", "counts"] as const;

/** One script's name. */
export type ScriptName = (typeof SCRIPT_NAMES)[number];

const read = (file: string) => readFileSync(new URL(`./lua/${file}`, import.meta.url), "utf8");

let sources: Map<ScriptName, string> | undefined;

/** A top-level block of lib.lua (text between blank lines) and the names it defines. */
interface LibBlock {
  text: string;
  defines: string[];
}

function libBlocks(lib: string): LibBlock[] {
  return lib.split(/\n\s*\n/).map((text) => ({
    text,
    defines: [...text.matchAll(/^local (?:function )?([A-Za-z_][\w, ]*?)\s*(?:=|\(|$)/gm)].flatMap((m) => m[1]!.split(",").map((n) => n.trim())),
  }));
}

/**
 * The part of lib.lua a script needs: the blocks defining what it names, and
 * what those name in turn (blocks that define nothing, like the header, always).
 * Redis runs the whole source on every call, so each helper left out is a
 * closure (or table) not built per call.
 */
export function libFor(lib: string, body: string): string {
  const blocks = libBlocks(lib);
  const uses = (text: string, name: string) => new RegExp(`\\b${name}\\b`).test(text);
  const keep = blocks.map((b) => b.defines.length === 0 || b.defines.includes("P"));
  for (let changed = true; changed; ) {
    changed = false;
    const text = body + "\n" + blocks.filter((_, i) => keep[i]).map((b) => b.text).join("\n");
    blocks.forEach((b, i) => {
      if (!keep[i] && b.defines.some((n) => uses(text, n))) keep[i] = changed = true;
    });
  }
  return blocks.filter((_, i) => keep[i]).map((b) => b.text).join("\n\n");
}

/** The full source of each script (the part of lib.lua it uses prepended). */
export function scriptSources(): Map<ScriptName, string> {
  if (!sources) {
    const lib = read("lib.lua");
    sources = new Map(
      SCRIPT_NAMES.map((n) => {
        const body = read(`${n}.lua`);
        return [n, `${libFor(lib, body)}\n${body}`];
      }),
    );
  }
  return sources;
}

interface Loaded {
  lua: string;
  sha: string;
}

let loaded: Map<ScriptName, Loaded> | undefined;

function script(name: ScriptName): Loaded {
  loaded ??= new Map([...scriptSources()].map(([n, lua]) => [n, { lua, sha: createHash("sha1").update(lua).digest("hex") }]));
  return loaded.get(name)!;
}

const UTF8 = { replyEncoding: "utf8" } as const;

/**
 * Run a script on a client with its ARGV (the prefix first). One ioredis command
 * per call: ioredis' own script commands (`defineCommand`) add two promises, a
 * closure and two argument copies per call, about 1.5 us of a single send's 50.
 */
export function runScript(client: Redis, name: ScriptName, args: (string | number)[]): Promise<unknown> {
  const { sha, lua } = script(name);
  const command = new Command("evalsha", [sha, 0, ...args], UTF8);
  client.sendCommand(command);
  return command.promise.catch((err: Error) => {
    if (!String(err?.message).startsWith("NOSCRIPT")) throw err;
    const again = new Command("eval", [lua, 0, ...args], UTF8);
    client.sendCommand(again);
    return again.promise;
  });
}
