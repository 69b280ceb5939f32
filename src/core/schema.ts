/**
 * Payload validation through Standard Schema: zod, valibot, arktype and any
 * other library that implements it.
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { FerryError } from "./errors.ts";

export type { StandardSchemaV1 };

/** One problem found in a payload, with its path (`user.email`). */
export interface PayloadIssue {
  path: string;
  message: string;
}

function pathOf(issue: StandardSchemaV1.Issue): string {
  if (!issue.path || issue.path.length === 0) return "(root)";
  return issue.path.map((seg) => String(typeof seg === "object" && seg !== null ? seg.key : seg)).join(".");
}

/** Largest nesting depth a payload may have. */
export const MAX_PAYLOAD_DEPTH = 64;

/**
 * Check that a payload is plain JSON (no functions, cycles, `undefined` at the
 * top, non-finite numbers, or deeper than {@link MAX_PAYLOAD_DEPTH}).
 * @throws FerryError `INVALID_PAYLOAD`
 */
export function assertJson(value: unknown, what: string): void {
  // The common case, a good payload, is checked without building paths; only a bad one is
  // walked again to say where.
  if (isPlainJson(value)) return;
  const problem = jsonProblem(value);
  if (problem) throw new FerryError("INVALID_PAYLOAD", `${what} is not JSON: ${problem.why} at ${problem.path}`, { details: { path: problem.path } });
}

/** Thrown inside {@link jsonProblem}'s walk to stop at the first problem. */
class Bad {
  constructor(
    readonly why: string,
    readonly path: string,
  ) {}
}

/** What makes `value` not plain JSON, and where; `undefined` when it is plain JSON. */
export function jsonProblem(value: unknown): { why: string; path: string } | undefined {
  const walk = (v: unknown, path: string, depth: number, seen: Set<object>): void => {
    if (depth > MAX_PAYLOAD_DEPTH) throw new Bad(`nesting deeper than ${MAX_PAYLOAD_DEPTH}`, path);
    if (v === null || typeof v === "string" || typeof v === "boolean") return;
    if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new Bad(`non-finite number ${v}`, path);
      return;
    }
    if (typeof v !== "object") throw new Bad(`a ${typeof v}`, path);
    const o = v as object;
    if (seen.has(o)) throw new Bad("a cycle", path);
    seen.add(o);
    if (Array.isArray(o)) o.forEach((x, i) => walk(x, `${path}[${i}]`, depth + 1, seen));
    else {
      const proto = Object.getPrototypeOf(o);
      if (proto !== Object.prototype && proto !== null && !(o instanceof Date)) throw new Bad(`an instance of ${o.constructor?.name ?? "a class"}`, path);
      if (!(o instanceof Date)) for (const [k, x] of Object.entries(o)) if (x !== undefined) walk(x, `${path}.${k}`, depth + 1, seen);
    }
    seen.delete(o);
  };
  if (value === undefined) return { why: "undefined (use null for no payload)", path: "(root)" };
  try {
    walk(value, "(root)", 0, new Set());
    return undefined;
  } catch (err) {
    if (err instanceof Bad) return { why: err.why, path: err.path };
    throw err;
  }
}

/** The objects on the path {@link isPlainJson} is walking (a cycle returns to one of them); reused, not made per call. */
const onPath: object[] = [];

/** True when `v` is plain JSON by the rules of {@link jsonProblem}, found without building paths (or allocating). */
export function isPlainJson(v: unknown): boolean {
  const base = onPath.length;
  try {
    return plain(v, 0);
  } finally {
    onPath.length = base;
  }
}

function plain(v: unknown, depth: number): boolean {
  if (depth > MAX_PAYLOAD_DEPTH) return false;
  if (v === null) return true;
  switch (typeof v) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(v);
    case "object":
      break;
    default:
      return false; // undefined at the top, a function, a symbol, a bigint
  }
  const o = v as Record<string, unknown>;
  if (onPath.includes(o)) return false;
  if (Array.isArray(o)) {
    onPath.push(o);
    for (let i = 0; i < o.length; i++) if (i in o && !plain(o[i], depth + 1)) return false;
    onPath.pop();
    return true;
  }
  if (o instanceof Date) return true;
  const proto = Object.getPrototypeOf(o);
  if (proto !== Object.prototype && proto !== null) return false;
  onPath.push(o);
  for (const k in o) {
    if (!Object.hasOwn(o, k)) continue;
    const x = o[k];
    if (x !== undefined && !plain(x, depth + 1)) return false;
  }
  onPath.pop();
  return true;
}

/**
 * Validate `value` with a Standard Schema (when there is one) and return the
 * schema's output.
 * @throws FerryError `INVALID_PAYLOAD` listing every issue with its path.
 */
export async function validatePayload<S extends StandardSchemaV1>(schema: S | undefined, value: unknown, what: string): Promise<StandardSchemaV1.InferOutput<S>> {
  if (!schema) return value as StandardSchemaV1.InferOutput<S>;
  let result = schema["~standard"].validate(value);
  if (result instanceof Promise) result = await result;
  if (result.issues) {
    const issues: PayloadIssue[] = result.issues.map((i) => ({ path: pathOf(i), message: i.message }));
    const summary = issues.slice(0, 5).map((i) => `${i.path}: ${i.message}`).join("; ");
    throw new FerryError("INVALID_PAYLOAD", `${what} failed its schema: ${summary}${issues.length > 5 ? ` (and ${issues.length - 5} more)` : ""}`, { details: { issues } });
  }
  return result.value as StandardSchemaV1.InferOutput<S>;
}

/** True when `value` looks like a Standard Schema. */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  return typeof value === "object" && value !== null && typeof (value as { "~standard"?: { validate?: unknown } })["~standard"]?.validate === "function";
}
