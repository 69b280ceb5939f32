/**
 * Options of the RabbitMQ transport and how they are read from a transport URL
 * (`amqp://user:pass@host:port/vhost?queueType=classic&prefix=app&runStore=./data/runs.db`;
 * the run store's retention: `completedCount`, `completedAge`, `deadCount`, `deadAge`).
 */
import { FerryError } from "../../core/errors.ts";
import { CHANNEL_PATTERN } from "../../core/names.ts";
import { resolveRetention, retentionFromParams, RETENTION_PARAMS, type RetainRules, type RetentionOptions } from "../retention.ts";

/** Where the transport reports connection trouble. */
export type AmqpLogger = (message: string, details?: Record<string, unknown>) => void;

/** Options of {@link AmqpTransport}. */
export interface AmqpTransportOptions {
  /** The broker URL as amqplib takes it (Ferry's own query parameters removed). Required. */
  url: string;
  /**
   * `quorum` (replicated, durable; the default) or `classic` (durable, single node,
   * honours per-message priority with `x-max-priority` 10). Default `"quorum"`.
   */
  queueType?: "quorum" | "classic";
  /** Prefix of every queue and exchange this transport declares. Default `"ferry"`. */
  prefix?: string;
  /**
   * Path of the SQLite run store that records each message's state, result and
   * errors (it powers counts, list, get and dedupKey), or `false` for none.
   * Default `"./data/ferry-runs.db"`.
   */
  runStore?: string | false;
  /**
   * Consumer prefetch per channel. `0` follows demand: a consumer's prefetch is
   * raised (to the next power of two, at most {@link AmqpTransportOptions.maxPrefetch})
   * when leases held plus the `max` of a receive exceed it. Default `0`.
   */
  prefetch?: number;
  /** Upper bound of the demand-following prefetch. Default `4096`. */
  maxPrefetch?: number;
  /** How long an operation waits for a lost connection to come back before failing with `TRANSPORT_UNAVAILABLE`. Default `30000` ms. */
  reconnectTimeoutMs?: number;
  /** Where connection loss and recovery are reported. Default `console.warn`. */
  logger?: AmqpLogger;
  /**
   * Retention of the run store's finished records, enforced in the background (see
   * `../retainer.ts`). Defaults in {@link RetentionOptions}: completed 10,000 per channel
   * for at most a day, dead-lettered 100,000 for at most 30 days.
   */
  retention?: RetentionOptions;
}

/** Query parameters that Ferry reads and amqplib must not see. */
const OWN_PARAMS = ["queueType", "prefix", "runStore", "prefetch", "maxPrefetch", "reconnectTimeoutMs"];

/**
 * Read transport options from a URL. amqplib's own parameters (`heartbeat`,
 * `frameMax`, `channelMax`, `locale`) stay in the URL; `heartbeat` defaults to 10 s.
 * @throws FerryError `INVALID_URL`
 */
export function optionsFromUrl(url: URL): AmqpTransportOptions {
  const q = url.searchParams;
  const bad = (param: string, why: string): never => {
    throw new FerryError("INVALID_URL", `AMQP URL parameter "${param}" ${why}`, { details: { param } });
  };
  const int = (param: string): number | undefined => {
    const text = q.get(param);
    if (text === null) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) bad(param, `must be a whole number >= 0, got ${JSON.stringify(text)}`);
    return n;
  };
  const options: AmqpTransportOptions = { url: "" };
  const retention = retentionFromParams(new URLSearchParams(q));
  if (retention) options.retention = retention;
  const queueType = q.get("queueType");
  if (queueType !== null) {
    if (queueType !== "quorum" && queueType !== "classic") bad("queueType", `must be "quorum" or "classic", got ${JSON.stringify(queueType)}`);
    options.queueType = queueType as "quorum" | "classic";
  }
  const prefix = q.get("prefix");
  if (prefix !== null) options.prefix = prefix;
  const runStore = q.get("runStore");
  if (runStore !== null) options.runStore = runStore === "" || runStore === "false" || runStore === "off" ? false : runStore;
  const prefetch = int("prefetch");
  if (prefetch !== undefined) options.prefetch = prefetch;
  const maxPrefetch = int("maxPrefetch");
  if (maxPrefetch !== undefined) options.maxPrefetch = maxPrefetch;
  const reconnect = int("reconnectTimeoutMs");
  if (reconnect !== undefined) options.reconnectTimeoutMs = reconnect;
  const broker = new URL(url.toString());
  for (const p of [...OWN_PARAMS, ...RETENTION_PARAMS]) broker.searchParams.delete(p);
  if (!broker.searchParams.has("heartbeat")) broker.searchParams.set("heartbeat", "10");
  options.url = broker.toString();
  return options;
}

/** Options with every default filled in. */
export type ResolvedAmqpOptions = Required<Omit<AmqpTransportOptions, "runStore" | "retention">> & { runStore: string | false; retention: RetainRules };

/**
 * Fill in defaults and check values.
 * @throws FerryError `INVALID_OPTION`
 */
export function resolveOptions(options: AmqpTransportOptions): ResolvedAmqpOptions {
  const prefix = options.prefix ?? "ferry";
  if (prefix.length > 50 || !CHANNEL_PATTERN.test(prefix)) {
    throw new FerryError("INVALID_OPTION", `AMQP prefix ${JSON.stringify(prefix)} is not valid: use 1-50 letters, digits, "_", "-", "."`, { details: { option: "prefix" } });
  }
  const maxPrefetch = options.maxPrefetch ?? 4096;
  if (!Number.isInteger(maxPrefetch) || maxPrefetch < 1 || maxPrefetch > 65535) {
    throw new FerryError("INVALID_OPTION", `AMQP maxPrefetch must be a whole number from 1 to 65535`, { details: { option: "maxPrefetch" } });
  }
  const prefetch = options.prefetch ?? 0;
  if (!Number.isInteger(prefetch) || prefetch < 0 || prefetch > 65535) {
    throw new FerryError("INVALID_OPTION", `AMQP prefetch must be a whole number from 0 (follow demand) to 65535`, { details: { option: "prefetch" } });
  }
  return {
    url: options.url,
    queueType: options.queueType ?? "quorum",
    prefix,
    runStore: options.runStore === undefined ? "./data/ferry-runs.db" : options.runStore,
    prefetch,
    maxPrefetch,
    reconnectTimeoutMs: options.reconnectTimeoutMs ?? 30_000,
    logger: options.logger ?? ((message, details) => console.warn(`[ferry amqp] ${message}`, details ?? "")),
    retention: resolveRetention(options.retention),
  };
}
