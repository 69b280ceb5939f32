/**
 * What a CLI command acts on: the transports of an app module (`--app`), or
 * one transport by URL (`--transport`, default `FERRY_URL`, else the default
 * SQLite file).
 */
import { loadApp } from "../bus/app-module.ts";
import { DEFAULT_TRANSPORT_URL, type Ferry } from "../bus/ferry.ts";
import { FerryError, toError } from "../core/errors.ts";
import { createTransport, redactUrl } from "../transport/registry.ts";
import type { Transport } from "../transport/types.ts";

/** Where a command finds its transports. */
export interface TargetOptions {
  /** An app module exporting a Ferry. */
  app?: string;
  /** A transport URL. */
  transport?: string;
}

/** The transports a command acts on, and how to let them go. */
export interface Target {
  /** Each distinct transport once, with the channels that use it (empty: any channel). */
  transports: { transport: Transport; channels: string[]; label: string }[];
  /** The app's Ferry, when `--app` was given. */
  ferry?: Ferry;
  /** Close what was opened. */
  close(): Promise<void>;
}

/**
 * Open the transports named by `--app` or `--transport`.
 * @throws FerryError `CONFIG_INVALID` (both given, or a bad app module), `INVALID_URL`,
 * `UNKNOWN_TRANSPORT`, `TRANSPORT_UNAVAILABLE`
 */
export async function openTarget(options: TargetOptions): Promise<Target> {
  if (options.app !== undefined && options.transport !== undefined) {
    throw new FerryError("CONFIG_INVALID", "give either --app or --transport, not both");
  }
  if (options.app !== undefined) {
    const ferry = await loadApp(options.app);
    const byTransport = new Map<Transport, string[]>();
    const used = ferry.channels();
    for (const channel of used.length > 0 ? used : [ferry.defaultChannel]) {
      const t = await ferry.transport(channel);
      const list = byTransport.get(t) ?? [];
      list.push(channel);
      byTransport.set(t, list);
    }
    return {
      ferry,
      transports: [...byTransport].map(([transport, channels]) => ({ transport, channels, label: transport.kind })),
      close: () => ferry.close(),
    };
  }
  const url = options.transport ?? process.env.FERRY_URL ?? DEFAULT_TRANSPORT_URL;
  const transport = await openTransport(url);
  return { transports: [{ transport, channels: [], label: redactUrl(url) }], close: () => transport.close() };
}

/**
 * Open one transport by URL, turning a driver's failure into a FerryError.
 * @throws FerryError `INVALID_URL`, `UNKNOWN_TRANSPORT`, `TRANSPORT_UNAVAILABLE`
 */
export async function openTransport(url: string): Promise<Transport> {
  try {
    return await createTransport(url);
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw new FerryError("TRANSPORT_UNAVAILABLE", `cannot connect to ${redactUrl(url)}: ${toError(err).message}`, { cause: err });
  }
}
