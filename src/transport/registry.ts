/**
 * Transport URLs to transports. Each scheme loads its module only when used,
 * so an app on SQLite never loads a Redis or AMQP client.
 */
import { FerryError } from "../core/errors.ts";
import type { Transport } from "./types.ts";

/** Builds a transport from a parsed URL. */
export type TransportFactory = (url: URL) => Promise<Transport>;

const factories = new Map<string, TransportFactory>([
  ["memory:", async (url) => new (await import("./memory/memory-transport.ts")).MemoryTransport({ name: url.pathname || url.host || undefined })],
  ["sqlite:", async (url) => (await import("./sqlite/sqlite-transport.ts")).SqliteTransport.fromUrl(url)],
  ["redis:", async (url) => (await import("./redis/redis-transport.ts")).RedisTransport.fromUrl(url)],
  ["rediss:", async (url) => (await import("./redis/redis-transport.ts")).RedisTransport.fromUrl(url)],
  ["postgres:", async (url) => (await import("./postgres/postgres-transport.ts")).PostgresTransport.fromUrl(url)],
  ["postgresql:", async (url) => (await import("./postgres/postgres-transport.ts")).PostgresTransport.fromUrl(url)],
  ["amqp:", async (url) => (await import("./amqp/amqp-transport.ts")).AmqpTransport.fromUrl(url)],
  ["amqps:", async (url) => (await import("./amqp/amqp-transport.ts")).AmqpTransport.fromUrl(url)],
]);

/**
 * Register a transport for a URL scheme (without the colon), e.g. `registerTransport("nats", ...)`.
 * Replaces an earlier registration of the same scheme.
 */
export function registerTransport(scheme: string, factory: TransportFactory): void {
  factories.set(`${scheme.replace(/:$/, "")}:`, factory);
}

/** The schemes with a registered transport. */
export function transportSchemes(): string[] {
  return [...factories.keys()].map((k) => k.slice(0, -1));
}

/**
 * Parse a transport URL, checking only its form.
 * @throws FerryError `INVALID_URL`, `UNKNOWN_TRANSPORT`
 */
export function parseTransportUrl(text: string): URL {
  if (typeof text !== "string" || text.length === 0) {
    throw new FerryError("INVALID_URL", `transport URL must be a non-empty string like "sqlite://./data/ferry.db" or "memory://"`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch (err) {
    throw new FerryError("INVALID_URL", `transport URL ${JSON.stringify(text)} cannot be parsed; expected e.g. "sqlite://./data/ferry.db", "memory://", "redis://127.0.0.1:6379/0"`, { cause: err });
  }
  if (!factories.has(url.protocol)) {
    throw new FerryError("UNKNOWN_TRANSPORT", `no transport for "${url.protocol}" in ${JSON.stringify(redactUrl(text))}; known: ${transportSchemes().join(", ")}`, { details: { scheme: url.protocol.slice(0, -1) } });
  }
  return url;
}

/**
 * Create a transport from its URL.
 * @throws FerryError `INVALID_URL`, `UNKNOWN_TRANSPORT`, `TRANSPORT_UNAVAILABLE`
 */
export async function createTransport(text: string): Promise<Transport> {
  const url = parseTransportUrl(text);
  return factories.get(url.protocol)!(url);
}

/** A URL with its password replaced, safe for logs and errors. */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return text.replace(/:\/\/([^:@/]+):[^@/]+@/, "://$1:***@");
  }
}
