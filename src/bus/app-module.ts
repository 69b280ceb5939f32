/**
 * Finding the Ferry in an app module: its default export, or an export named
 * `ferry`. Used by executor processes and the CLI.
 */
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { FerryError } from "../core/errors.ts";
import { Ferry } from "./ferry.ts";

function looksLikeFerry(value: unknown): value is Ferry {
  return value instanceof Ferry || (typeof value === "object" && value !== null && typeof (value as Ferry).worker === "function" && typeof (value as Ferry).tasks === "function");
}

/**
 * The Ferry an app module exports.
 * @throws FerryError `CONFIG_INVALID` when it exports none.
 */
export function findFerry(mod: Record<string, unknown>, path: string): Ferry {
  for (const candidate of [mod.default, mod.ferry, (mod.default as Record<string, unknown> | undefined)?.ferry]) {
    if (looksLikeFerry(candidate)) return candidate;
  }
  throw new FerryError("CONFIG_INVALID", `${path} exports no Ferry: export it as the default export or as "ferry" (export default createFerry({...}))`);
}

/**
 * Import an app module by path and return its Ferry.
 * @throws FerryError `CONFIG_INVALID`
 */
export async function loadApp(path: string): Promise<Ferry> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
  } catch (err) {
    throw new FerryError("CONFIG_INVALID", `cannot load app module ${path}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  return findFerry(mod, path);
}
