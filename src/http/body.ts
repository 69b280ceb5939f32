/**
 * Reading a JSON request body safely: the content type is checked first, the
 * size is refused from `Content-Length` or while streaming (never after
 * buffering it all), nesting and key counts are measured by a linear scan
 * before parsing, and the parsed value is refused when it carries `__proto__`
 * keys or strings that are not well-formed Unicode (I-JSON, RFC 7493).
 */
import { HttpError } from "./http-errors.ts";

/** Limits on a request body. */
export interface BodyLimits {
  /** Largest body in bytes. */
  bodyLimit: number;
  /** Deepest nesting of objects and arrays in the whole body. */
  maxDepth: number;
  /** Most object keys in the whole body. */
  maxKeys: number;
}

const JSON_TYPE = /^application\/(?:[a-z0-9.+-]*\+)?json$/;

/**
 * Check that the content type is JSON (`application/json` or `application/*+json`),
 * with no charset but UTF-8.
 * @throws HttpError `UNSUPPORTED_MEDIA_TYPE`
 */
export function assertJsonContentType(header: string | undefined): void {
  const [type = "", ...params] = (header ?? "").split(";").map((p) => p.trim().toLowerCase());
  const charset = params.find((p) => p.startsWith("charset="));
  if (!JSON_TYPE.test(type) || (charset !== undefined && !/^charset="?utf-8"?$/.test(charset))) {
    throw new HttpError("UNSUPPORTED_MEDIA_TYPE", "send the body as Content-Type: application/json (UTF-8)");
  }
}

/**
 * Read the body as bytes, refusing it as soon as it passes `limit`.
 * @throws HttpError `BODY_TOO_LARGE`
 */
export async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    throw new HttpError("BODY_TOO_LARGE", `the body is larger than ${limit} bytes`, { limit });
  }
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new HttpError("BODY_TOO_LARGE", `the body is larger than ${limit} bytes`, { limit });
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * Measure nesting depth and key count of JSON text in one pass, without
 * parsing it. Stops as soon as a limit is passed.
 * @throws HttpError `TOO_DEEP`, `TOO_MANY_KEYS`
 */
export function scanJsonShape(text: string, maxDepth: number, maxKeys: number): void {
  let depth = 0;
  let keys = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++; // backslash: skip the escaped character
      else if (ch === 0x22) inString = false;
      continue;
    }
    if (ch === 0x22) inString = true;
    else if (ch === 0x7b || ch === 0x5b) {
      if (++depth > maxDepth) throw new HttpError("TOO_DEEP", `the body nests deeper than ${maxDepth} levels`, { limit: maxDepth });
    } else if (ch === 0x7d || ch === 0x5d) depth--;
    else if (ch === 0x3a && ++keys > maxKeys) throw new HttpError("TOO_MANY_KEYS", `the body has more than ${maxKeys} object keys`, { limit: maxKeys });
  }
}

/** True when a string has no lone surrogate (String.prototype.isWellFormed, Node 20+). */
const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/**
 * Refuse `__proto__` keys (they pollute prototypes when a payload is later
 * merged) and strings with lone surrogates (they cannot be stored as UTF-8
 * unchanged). Depth is already bounded by {@link scanJsonShape}.
 * @throws HttpError `FORBIDDEN_KEY`, `INVALID_JSON`
 */
export function checkJsonValue(value: unknown, path = "(root)"): void {
  if (typeof value === "string") {
    if (!wellFormed(value)) throw new HttpError("INVALID_JSON", `a string at ${path} holds a lone surrogate (not well-formed Unicode)`, { path });
    return;
  }
  if (typeof value !== "object" || value === null) return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkJsonValue(value[i], `${path}[${i}]`);
    return;
  }
  for (const key of Object.keys(value)) {
    if (key === "__proto__") throw new HttpError("FORBIDDEN_KEY", `the key "__proto__" is refused (at ${path})`, { path });
    if (!wellFormed(key)) throw new HttpError("INVALID_JSON", `a key at ${path} holds a lone surrogate (not well-formed Unicode)`, { path });
    checkJsonValue((value as Record<string, unknown>)[key], `${path}.${key}`);
  }
}

/**
 * Read, check and parse a JSON body.
 * @throws HttpError `UNSUPPORTED_MEDIA_TYPE`, `BODY_TOO_LARGE`, `INVALID_JSON`, `TOO_DEEP`, `TOO_MANY_KEYS`, `FORBIDDEN_KEY`
 */
export async function readJsonBody(request: Request, limits: BodyLimits): Promise<unknown> {
  assertJsonContentType(request.headers.get("content-type") ?? undefined);
  const bytes = await readLimited(request, limits.bodyLimit);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError("INVALID_JSON", "the body is not valid UTF-8");
  }
  if (text.trim() === "") throw new HttpError("INVALID_JSON", "the body is empty; send a JSON object such as {\"payload\": {...}}");
  scanJsonShape(text, limits.maxDepth, limits.maxKeys);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError("INVALID_JSON", "the body is not valid JSON");
  }
  checkJsonValue(value);
  return value;
}
