/**
 * Bearer tokens with two scopes: `read` (enqueue, inspect, stream, metrics) and
 * `admin` (everything, plus dead-letter replay/discard and pause/resume).
 * Tokens come from the options, else the environment or a file; they are
 * compared in constant time by their SHA-256 hashes and never logged.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { FerryError } from "../core/errors.ts";
import { HttpError } from "./http-errors.ts";

/** Tokens by scope. An admin token also has the read scope. */
export interface TokenConfig {
  /** Tokens that may enqueue, inspect, stream and scrape metrics. Default none. */
  read?: string[];
  /** Tokens that may also replay/discard dead letters and pause/resume channels. Default none. */
  admin?: string[];
}

/** What a request may do. */
export type Scope = "read" | "admin";

/** The shortest token accepted: 16 characters. */
export const MIN_TOKEN_LENGTH = 16;

const TOKEN_PATTERN = /^[\x21-\x7e]+$/;

function split(text: string | undefined): string[] {
  return (text ?? "").split(",").map((t) => t.trim()).filter((t) => t.length > 0);
}

/**
 * Read a tokens file: either JSON `{ "read": [...], "admin": [...] }`, or lines
 * `read <token>` / `admin <token>` with `#` comments.
 * @throws FerryError `CONFIG_INVALID`
 */
export function readTokensFile(path: string): TokenConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new FerryError("CONFIG_INVALID", `cannot read the tokens file named by FERRY_TOKENS_FILE: ${(err as Error).message}`, { cause: err });
  }
  if (text.trimStart().startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new FerryError("CONFIG_INVALID", `the tokens file is not valid JSON; write { "read": ["..."], "admin": ["..."] }`);
    }
    const o = parsed as Record<string, unknown>;
    const list = (v: unknown, scope: string): string[] => {
      if (v === undefined) return [];
      if (!Array.isArray(v) || !v.every((t) => typeof t === "string")) throw new FerryError("CONFIG_INVALID", `"${scope}" in the tokens file must be an array of strings`);
      return v as string[];
    };
    return { read: list(o.read, "read"), admin: list(o.admin, "admin") };
  }
  const config: Required<TokenConfig> = { read: [], admin: [] };
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const [scope, token, extra] = line.split(/\s+/);
    if ((scope !== "read" && scope !== "admin") || token === undefined || extra !== undefined) {
      throw new FerryError("CONFIG_INVALID", `tokens file line ${i + 1}: write "read <token>" or "admin <token>"`);
    }
    config[scope].push(token);
  });
  return config;
}

/**
 * The tokens to use: `explicit` when given, else `FERRY_TOKEN` (read, comma
 * separated), `FERRY_ADMIN_TOKEN` (admin, comma separated) and the file named by
 * `FERRY_TOKENS_FILE`, merged.
 */
export function resolveTokens(explicit: TokenConfig | undefined, env: NodeJS.ProcessEnv = process.env): TokenConfig {
  if (explicit !== undefined) return { read: [...(explicit.read ?? [])], admin: [...(explicit.admin ?? [])] };
  const read = split(env.FERRY_TOKEN);
  const admin = split(env.FERRY_ADMIN_TOKEN);
  if (env.FERRY_TOKENS_FILE) {
    const file = readTokensFile(env.FERRY_TOKENS_FILE);
    read.push(...(file.read ?? []));
    admin.push(...(file.admin ?? []));
  }
  return { read, admin };
}

const hash = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest();

/** Checks presented tokens against the configured ones in constant time. */
export class TokenChecker {
  readonly #read: Buffer[];
  readonly #admin: Buffer[];

  /** @throws FerryError `CONFIG_INVALID` for a token shorter than {@link MIN_TOKEN_LENGTH} or with spaces or control characters. */
  constructor(config: TokenConfig) {
    for (const token of [...(config.read ?? []), ...(config.admin ?? [])]) {
      if (typeof token !== "string" || token.length < MIN_TOKEN_LENGTH || !TOKEN_PATTERN.test(token)) {
        // Never echo the token itself.
        throw new FerryError("CONFIG_INVALID", `every API token must be at least ${MIN_TOKEN_LENGTH} printable ASCII characters without spaces (e.g. from "openssl rand -hex 32")`);
      }
    }
    this.#read = (config.read ?? []).map(hash);
    this.#admin = (config.admin ?? []).map(hash);
  }

  /** True when no token is configured at all (the open, loopback-only mode). */
  get open(): boolean {
    return this.#read.length === 0 && this.#admin.length === 0;
  }

  /** The scope a presented token grants, or undefined. Every configured token is compared, match or not. */
  scopeOf(token: string): Scope | undefined {
    const presented = hash(token);
    let admin = false;
    let read = false;
    for (const h of this.#admin) admin = timingSafeEqual(h, presented) || admin;
    for (const h of this.#read) read = timingSafeEqual(h, presented) || read;
    return admin ? "admin" : read ? "read" : undefined;
  }

  /**
   * The scope of a request from its `Authorization` header (Bearer only).
   * @throws HttpError `UNAUTHORIZED`
   */
  authorize(header: string | undefined, url: URL): Scope {
    if (url.searchParams.has("access_token") || url.searchParams.has("token")) {
      throw new HttpError("UNAUTHORIZED", "tokens are never accepted in the URL (they end up in logs); send Authorization: Bearer <token>");
    }
    if (this.open) return "admin";
    if (header === undefined) throw new HttpError("UNAUTHORIZED", "this API needs a token: send Authorization: Bearer <token>");
    const match = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(header);
    if (!match) throw new HttpError("UNAUTHORIZED", "the Authorization header must be \"Bearer <token>\"");
    const scope = this.scopeOf(match[1]!);
    if (scope === undefined) throw new HttpError("UNAUTHORIZED", "the token is not valid");
    return scope;
  }
}

/** True for hosts that only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === "::ffff:127.0.0.1";
}
