/**
 * What the Redis transport says about its server: unsafe settings on open, and
 * lost or restored connections while running. Never silent: every loss and
 * every recovery goes to the warning handler.
 */
import type { Redis } from "ioredis";
import type { WarningHandler } from "./redis-options.ts";

/** The server settings that decide whether stored messages are safe. */
export interface ServerSettings {
  /** `maxmemory-policy`, or undefined when it could not be read. */
  maxmemoryPolicy?: string | undefined;
  /** `appendonly` (`yes` / `no`), or undefined when it could not be read. */
  appendonly?: string | undefined;
  /** `save` (RDB snapshot rules; empty for none), or undefined when it could not be read. */
  save?: string | undefined;
}

/** Warnings for unsafe settings: eviction of messages, or no persistence. Empty when safe. */
export function serverWarnings(s: ServerSettings, target: string): string[] {
  const out: string[] = [];
  if (s.maxmemoryPolicy === undefined) {
    out.push(`ferry redis: could not read maxmemory-policy of ${target} (CONFIG disabled?); unless it is "noeviction", Redis may delete queued messages when memory is full`);
  } else if (s.maxmemoryPolicy !== "noeviction") {
    out.push(`ferry redis: ${target} has maxmemory-policy "${s.maxmemoryPolicy}": when memory is full Redis may evict queued and running messages, losing them silently; set maxmemory-policy noeviction`);
  }
  const aof = s.appendonly === "yes";
  const rdb = s.save !== undefined && s.save.trim() !== "";
  if (s.appendonly !== undefined && s.save !== undefined && !aof && !rdb) {
    out.push(`ferry redis: ${target} has no persistence (appendonly no, save ""): a Redis restart loses every queued, delayed and dead message; enable appendonly yes (appendfsync always for no loss, everysec loses up to ~1 s)`);
  } else if (s.appendonly !== undefined && !aof && rdb) {
    out.push(`ferry redis: ${target} persists only by RDB snapshots (save "${s.save}"): a Redis crash loses messages sent since the last snapshot; enable appendonly yes for durability`);
  }
  return out;
}

async function configValue(client: Redis, name: string): Promise<string | undefined> {
  try {
    const reply = (await client.config("GET", name)) as string[];
    return reply.length >= 2 ? reply[1] : undefined;
  } catch {
    return undefined;
  }
}

/** Read the settings that {@link serverWarnings} checks; missing ones stay undefined. */
export async function readServerSettings(client: Redis): Promise<ServerSettings> {
  const [maxmemoryPolicy, appendonly, save] = await Promise.all([configValue(client, "maxmemory-policy"), configValue(client, "appendonly"), configValue(client, "save")]);
  const settings: ServerSettings = { maxmemoryPolicy, appendonly, save };
  if (maxmemoryPolicy === undefined || appendonly === undefined) {
    // CONFIG is often disabled on managed services; INFO still tells.
    try {
      const info = await client.info();
      settings.maxmemoryPolicy ??= /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
      const aof = /^aof_enabled:(\d)/m.exec(info)?.[1];
      if (settings.appendonly === undefined && aof !== undefined) settings.appendonly = aof === "1" ? "yes" : "no";
    } catch {
      // Leave unknown; serverWarnings says so.
    }
  }
  return settings;
}

/**
 * Watches one connection and reports its loss and recovery. One warning when
 * the connection drops, one every 10 failed reconnects, one when it is back.
 */
export class ConnectionMonitor {
  #downSince = 0;
  #attempts = 0;
  #lastError = "";
  #stopped = false;
  #everReady = false;

  /**
   * @param client the connection to watch
   * @param target `host:port` for messages
   * @param warn where warnings go
   * @param role what this connection does, for messages (e.g. "command connection")
   */
  constructor(client: Redis, readonly target: string, readonly warn: WarningHandler, readonly role: string) {
    client.on("error", (err: Error) => {
      // Before the first connection, open() reports the failure itself.
      if (this.#stopped || !this.#everReady) return;
      const text = err.message;
      if (text === this.#lastError) return;
      this.#lastError = text;
      this.warn(`ferry redis: ${role} to ${target}: ${text}`);
    });
    client.on("close", () => {
      if (this.#stopped || !this.#everReady || this.#downSince !== 0) return;
      this.#downSince = Date.now();
      this.#attempts = 0;
      this.warn(`ferry redis: lost the ${role} to ${target}; reconnecting. Sends, receives and acks wait for it (or fail after ioredis' retries)`);
    });
    client.on("reconnecting", () => {
      if (this.#stopped) return;
      this.#attempts++;
      if (this.#attempts % 10 === 0) this.warn(`ferry redis: still cannot reach ${target} after ${Math.round((Date.now() - this.#downSince) / 1000)} s (${this.#attempts} attempts); retrying`);
    });
    client.on("ready", () => {
      this.#everReady = true;
      if (this.#stopped || this.#downSince === 0) return;
      this.warn(`ferry redis: reconnected the ${role} to ${target} after ${Date.now() - this.#downSince} ms`);
      this.#downSince = 0;
      this.#lastError = "";
    });
  }

  /** True while the connection is lost. */
  get down(): boolean {
    return this.#downSince !== 0;
  }

  /** Stop reporting (the transport is closing). */
  stop(): void {
    this.#stopped = true;
  }
}
