/**
 * Helpers for the Redis transport's tests and benchmark: a unique key prefix
 * per run, and deleting exactly the keys under it (SCAN + DEL; never FLUSHDB,
 * the server is shared).
 */
import { Redis } from "ioredis";

/** A key prefix no other run uses: `ferry-test-<pid>-<time>-<tag>`. */
export function uniquePrefix(tag: string): string {
  return `ferry-test-${process.pid}-${Date.now().toString(36)}-${tag}`;
}

/** Delete every key starting with `prefix` (all of this run's keys). Returns how many. */
export async function deleteKeys(url: string, prefix: string): Promise<number> {
  if (!/^ferry-[A-Za-z0-9_-]+$/.test(prefix)) throw new Error(`refusing to delete keys of an unexpected prefix ${JSON.stringify(prefix)}`);
  const client = new Redis(url, { lazyConnect: true });
  await client.connect();
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) deleted += await client.del(...keys);
    } while (cursor !== "0");
  } finally {
    await client.quit();
  }
  return deleted;
}
