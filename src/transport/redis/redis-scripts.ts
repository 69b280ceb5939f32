/**
 * The Lua scripts of the Redis transport, loaded once per connection. Each
 * `.lua` file in `lua/` opens with its KEYS, ARGV and return values; `lib.lua`
 * (the key layout and shared helpers) is prepended to every one of them.
 * ioredis sends EVAL the first time a script is used on a socket, then EVALSHA,
 * so scripts survive a Redis restart without a reload step of our own.
 */
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

/** The names of the scripts, as files in `lua/` (without `.lua`). */
export const SCRIPT_NAMES = ["send", "receive", "ack", "retry", "dead", "extend", "replay", "discard", "prune", "counts"] as const;

/** One script's name. */
export type ScriptName = (typeof SCRIPT_NAMES)[number];

/** The command name under which a script is defined on a client. */
const commandName = (name: ScriptName) => `ferry_${name}`;

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

/** Define every script on a client (idempotent per client). */
export function defineScripts(client: Redis): void {
  for (const [name, lua] of scriptSources()) client.defineCommand(commandName(name), { numberOfKeys: 0, lua });
}

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/** Run a script on a client with its ARGV (the prefix first). */
export function runScript(client: Redis, name: ScriptName, args: (string | number)[]): Promise<unknown> {
  return ((client as unknown as Record<string, ScriptFn>)[commandName(name)] as ScriptFn).apply(client, args);
}
