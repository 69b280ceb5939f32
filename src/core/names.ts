import { FerryError } from "./errors.ts";

/**
 * Task and event names: dot-separated words of letters, digits, `_`, `-` and `:`,
 * 1-200 characters, e.g. `email.welcome`, `order.created`.
 */
export const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_:-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_:-]*)*$/;
/** Channel names: letters, digits, `_`, `-`, `.`; 1-100 characters; no leading dot. */
export const CHANNEL_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
/**
 * Channels of this prefix are request/reply inboxes, one per requesting process
 * (`_reply.<random>`): transports may let their storage expire once no process uses it.
 */
export const REPLY_CHANNEL_PREFIX = "_reply.";
/** Routing patterns: names whose words may be `*` (exactly one word) or `#` (zero or more). */
export const PATTERN_PATTERN = /^(?:[A-Za-z0-9_][A-Za-z0-9_:-]*|\*|#)(?:\.(?:[A-Za-z0-9_][A-Za-z0-9_:-]*|\*|#))*$/;

/**
 * Check a task or event name against the allowlist.
 * @throws FerryError `INVALID_NAME`
 */
export function assertName(name: unknown, kind = "name"): string {
  if (typeof name !== "string" || name.length === 0 || name.length > 200 || !NAME_PATTERN.test(name)) {
    throw new FerryError("INVALID_NAME", `${kind} ${JSON.stringify(name)} is not valid: use 1-200 characters of letters, digits, "_", "-", ":" in dot-separated words, like "email.welcome"`, { details: { kind } });
  }
  return name;
}

/**
 * Check a channel name against the allowlist.
 * @throws FerryError `INVALID_NAME`
 */
export function assertChannel(channel: unknown): string {
  if (typeof channel !== "string" || channel.length === 0 || channel.length > 100 || !CHANNEL_PATTERN.test(channel)) {
    throw new FerryError("INVALID_NAME", `channel ${JSON.stringify(channel)} is not valid: use 1-100 characters of letters, digits, "_", "-", "."`, { details: { kind: "channel" } });
  }
  return channel;
}

/**
 * Check a routing pattern (`order.*.paid`, `audit.#`).
 * @throws FerryError `INVALID_NAME`
 */
export function assertPattern(pattern: unknown): string {
  if (typeof pattern !== "string" || pattern.length === 0 || pattern.length > 200 || !PATTERN_PATTERN.test(pattern)) {
    throw new FerryError("INVALID_NAME", `pattern ${JSON.stringify(pattern)} is not valid: dot-separated words, each a name, "*" (one word) or "#" (zero or more words)`, { details: { kind: "pattern" } });
  }
  return pattern;
}

/** True when a pattern has wildcards. */
export function isPattern(text: string): boolean {
  return text.split(".").some((w) => w === "*" || w === "#");
}

/**
 * Compile an AMQP topic pattern into a matcher: `*` matches exactly one word,
 * `#` zero or more words.
 */
export function compilePattern(pattern: string): (name: string) => boolean {
  const words = assertPattern(pattern).split(".");
  return (name: string) => matchWords(words, 0, name.split("."), 0);
}

function matchWords(pat: string[], pi: number, words: string[], wi: number): boolean {
  while (pi < pat.length) {
    const p = pat[pi]!;
    if (p === "#") {
      if (pi === pat.length - 1) return true;
      for (let k = wi; k <= words.length; k++) if (matchWords(pat, pi + 1, words, k)) return true;
      return false;
    }
    if (wi >= words.length) return false;
    if (p !== "*" && p !== words[wi]) return false;
    pi++;
    wi++;
  }
  return wi === words.length;
}
