/**
 * The Lua scripts of the Redis transport, loaded once per connection. Each
 * `.lua` file in `lua/` opens with its KEYS, ARGV and return values; `lib.lua`
 * (the key layout and shared helpers) is prepended to every one of them.
 * ioredis sends EVAL the first time a script is used on a socket, then EVALSHA,
 * so scripts survive a Redis restart without a reload step of our own.
 */
import { readFileSync } from "node:fs";
import type { Redis, ChainableCommander } from "ioredis";

/** The names of the scripts, as files in `lua/` (without `.lua`). */
export const SCRIPT_NAMES = ["send", "receive", "ack", "retry", "dead", "extend", "replay", "discard", "prune", "counts"] as const;

/** One script's name. */
export type ScriptName = (typeof SCRIPT_NAMES)[number];

/** The command name under which a script is defined on a client. */
const commandName = (name: ScriptName) => `ferry_${name}`;

const read = (file: string) => readFileSync(new URL(`./lua/${file}`, import.meta.url), "utf8");

let sources: Map<ScriptName, string> | undefined;

/** The full source of each script (lib.lua prepended). */
export function scriptSources(): Map<ScriptName, string> {
  if (!sources) {
    const lib = read("lib.lua");
    sources = new Map(SCRIPT_NAMES.map((n) => [n, `${lib}\n${read(`${n}.lua`)}`]));
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

/** Queue a script on a pipeline or MULTI with its ARGV (the prefix first). */
export function queueScript(chain: ChainableCommander, name: ScriptName, args: (string | number)[]): void {
  ((chain as unknown as Record<string, ScriptFn>)[commandName(name)] as ScriptFn).apply(chain, args);
}
