/**
 * `serve()`: the HTTP API on a Node HTTP server. Refuses to listen beyond
 * loopback without a token; bounds header size and slow clients.
 */
import type { Server } from "node:http";
import { createAdaptorServer } from "@hono/node-server";
import type { Hono } from "hono";
import type { Ferry } from "../bus/ferry.ts";
import { FerryError } from "../core/errors.ts";
import { appInternals, createApp, type AppOptions } from "./app.ts";
import { isLoopback, resolveTokens, TokenChecker } from "./auth.ts";

export { appInternals, createApp, OPEN_ROUTES, type AppOptions, type AppInternals } from "./app.ts";

/** Options of {@link serve}: the app's options plus where to listen. */
export interface ServeOptions extends AppOptions {
  /** TCP port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Interface to listen on. Default `"127.0.0.1"`; anything beyond loopback needs a token. */
  host?: string;
  /** Largest request header block in bytes (larger answers 431). Default 16 KiB. */
  maxHeaderSize?: number;
  /** Time a client has to send its headers, in ms (slow clients are cut). Default 10,000. */
  headersTimeoutMs?: number;
  /** Time a client has to send its whole request, in ms. Default 30,000. */
  requestTimeoutMs?: number;
}

/** A running HTTP API. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  port: number;
  /** The Hono app being served (its route table, for tests and tools). */
  app: Hono<any>;
  /** Close every stream and connection and stop listening. The Ferry stays open. */
  close(): Promise<void>;
}

/**
 * Serve the HTTP API of `ferry`.
 * @throws FerryError `CONFIG_INVALID` when no token is configured and `host` is not loopback, a token is malformed, or the port cannot be listened on.
 */
export async function serve(ferry: Ferry, options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new FerryError("CONFIG_INVALID", `port must be a whole number from 0 to 65535, got ${String(port)}`);
  const tokens = resolveTokens(options.tokens);
  const checker = new TokenChecker(tokens);
  if (checker.open) {
    if (!isLoopback(host)) {
      throw new FerryError("CONFIG_INVALID", `refusing to serve on ${host} without a token: set FERRY_TOKEN and FERRY_ADMIN_TOKEN (or FERRY_TOKENS_FILE), or listen on 127.0.0.1`);
    }
    process.emitWarning("ferry http: no API token is set; any process on this machine may call every route, admin included. Set FERRY_TOKEN and FERRY_ADMIN_TOKEN.", { code: "FERRY_HTTP_OPEN" });
  }
  const app = createApp(ferry, { ...options, tokens });
  const server = createAdaptorServer({
    fetch: app.fetch,
    hostname: host,
    serverOptions: {
      maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
      headersTimeout: options.headersTimeoutMs ?? 10_000,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
    },
  }) as Server;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      appInternals(app).close();
      reject(new FerryError("CONFIG_INVALID", `cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${actualPort}`,
    port: actualPort,
    app,
    close() {
      closing ??= new Promise<void>((resolve) => {
        appInternals(app).close();
        server.close(() => resolve());
        server.closeIdleConnections();
        // Streams were ended above; cut whatever is still open (a stalled upload).
        setImmediate(() => server.closeAllConnections());
      });
      return closing;
    },
  };
}
