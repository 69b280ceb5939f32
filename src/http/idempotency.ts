/**
 * `Idempotency-Key`: the first POST with a key runs; a retry with the same key
 * on the same route gets the same 202 body for a while, without running again.
 * Concurrent retries wait for the first. A key reused with a different body is
 * refused. Memory is bounded: entries expire and the oldest go first.
 */
import { createHash } from "node:crypto";
import { HttpError } from "./http-errors.ts";

/** Options of the idempotency cache. */
export interface IdempotencyOptions {
  /** How long a key is remembered, in ms. Default 24 hours. */
  ttlMs?: number;
  /** Most keys remembered; the oldest are forgotten first. Default 10,000. */
  maxEntries?: number;
}

interface Entry {
  expiresAt: number;
  bodyHash: string;
  result: Promise<unknown>;
}

/** Keys: 1-200 printable ASCII characters. */
const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

/**
 * Check an `Idempotency-Key` header value.
 * @throws HttpError `INVALID_HEADER`
 */
export function checkIdempotencyKey(key: string): string {
  if (!KEY_PATTERN.test(key)) throw new HttpError("INVALID_HEADER", "Idempotency-Key must be 1-200 printable ASCII characters without spaces");
  return key;
}

/** Remembers the outcome of keyed requests. */
export class IdempotencyCache {
  readonly #ttlMs: number;
  readonly #max: number;
  #entries = new Map<string, Entry>();

  constructor(options: IdempotencyOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 24 * 3_600_000;
    this.#max = options.maxEntries ?? 10_000;
  }

  /** How many keys are remembered now. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Run `work` once per (scope, key): a repeat within the TTL returns the first
   * outcome. A failed `work` is forgotten, so the caller may retry.
   * @throws HttpError `IDEMPOTENCY_CONFLICT` when the key was used with another body.
   */
  async run<T>(scope: string, key: string, body: unknown, work: () => Promise<T>, now = Date.now()): Promise<{ value: T; replayed: boolean }> {
    const id = `${scope}\0${key}`;
    const bodyHash = createHash("sha256").update(JSON.stringify(body) ?? "").digest("base64");
    const existing = this.#entries.get(id);
    if (existing && existing.expiresAt > now) {
      if (existing.bodyHash !== bodyHash) throw new HttpError("IDEMPOTENCY_CONFLICT", "this Idempotency-Key was already used with a different body; use a new key for a new request");
      return { value: (await existing.result) as T, replayed: true };
    }
    if (existing) this.#entries.delete(id);
    this.#evict(now);
    const result = work();
    const entry: Entry = { expiresAt: now + this.#ttlMs, bodyHash, result };
    this.#entries.set(id, entry);
    try {
      return { value: await result, replayed: false };
    } catch (err) {
      if (this.#entries.get(id) === entry) this.#entries.delete(id);
      throw err;
    }
  }

  #evict(now: number): void {
    for (const [id, e] of this.#entries) {
      if (e.expiresAt > now && this.#entries.size < this.#max) break;
      this.#entries.delete(id);
    }
  }

  /** Forget every key. */
  clear(): void {
    this.#entries.clear();
  }
}
