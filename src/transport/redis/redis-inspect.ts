/**
 * Read-only inspection of the Redis transport's keys: counts per channel and
 * state, lists by state, one message with its run record. Reads only; every
 * state change goes through the Lua scripts.
 */
import type { Redis } from "ioredis";
import type { ChannelCounts, ListQuery, MessageRecord } from "../types.ts";
import { recordFrom } from "./redis-records.ts";

/** Parse the reply of `counts.lua`, sorted by channel. */
export function parseCounts(reply: unknown[]): ChannelCounts[] {
  const out: ChannelCounts[] = [];
  for (let i = 1; i < reply.length; i += 8) {
    const n = (k: number) => Number(reply[i + k]);
    out.push({ channel: String(reply[i]), waiting: n(1) + n(2) + n(3), delayed: n(3), active: n(4), completed: n(5), cancelled: n(6), dead: n(7) });
  }
  return out.sort((a, b) => a.channel.localeCompare(b.channel));
}

function unwrap(results: [Error | null, unknown][] | null): unknown[] {
  return (results ?? []).map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/** Read stored messages by id (envelope and state in one pipeline); missing ones are left out. */
export async function readRecords(client: Redis, prefix: string, ids: readonly string[]): Promise<MessageRecord[]> {
  if (ids.length === 0) return [];
  const pipe = client.pipeline();
  for (const id of ids) pipe.get(`${prefix}:m:${id}`).hgetall(`${prefix}:h:${id}`);
  const replies = unwrap(await pipe.exec());
  const records: MessageRecord[] = [];
  for (let i = 0; i < replies.length; i += 2) {
    const record = recordFrom(replies[i] as string | null, replies[i + 1] as Record<string, string>);
    if (record) records.push(record);
  }
  return records;
}

/**
 * List messages in one state over `channels`, `limit` from `offset`. Order:
 * completed, cancelled and dead by finish time, newest first; active by lease
 * end, latest first; waiting in reverse delivery order (delayed, latest due
 * first, then ready, last to run first). A message that changed state between
 * the two reads is left out.
 */
export async function listRecords(client: Redis, prefix: string, channels: readonly string[], query: ListQuery, limit: number, offset: number): Promise<MessageRecord[]> {
  const keysFor = (ch: string): string[] =>
    query.state === "waiting" ? [`${prefix}:d:${ch}`, `${prefix}:r:${ch}`] : query.state === "active" ? [`${prefix}:a:${ch}`] : [`${prefix}:s:${query.state}:${ch}`];
  const groups = channels.flatMap((ch) => keysFor(ch).map((key, group) => ({ key, group })));
  const pipe = client.pipeline();
  for (const g of groups) pipe.zrevrange(g.key, 0, offset + limit - 1, "WITHSCORES");
  const candidates: { id: string; group: number; score: number }[] = [];
  unwrap(await pipe.exec()).forEach((reply, i) => {
    const flat = reply as string[];
    for (let j = 0; j < flat.length; j += 2) candidates.push({ id: flat[j]!, group: groups[i]!.group, score: Number(flat[j + 1]) });
  });
  candidates.sort((a, b) => a.group - b.group || b.score - a.score || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const page = candidates.slice(offset, offset + limit).map((c) => c.id);
  return (await readRecords(client, prefix, page)).filter((r) => r.state === query.state);
}
