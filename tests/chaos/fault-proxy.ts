/**
 * A TCP fault proxy written with `node:net`: sits between workers and a server
 * and injects network faults without touching the shared server.
 *
 * - `delay(ms)`: every chunk, both ways, arrives `ms` later (order kept).
 * - `drop(on)`: while on, new connections are closed at once and open ones
 *   are ended, like a server that went away.
 * - `reset()`: every open connection is reset (RST) now, like a server crash.
 * - `blackhole(on)`: while on, bytes are held both ways and new connections
 *   are not forwarded, like a partition or a paused (SIGSTOP) server; TCP
 *   would retransmit, so held bytes are delivered in order when it ends,
 *   unless a side gave up and closed meanwhile.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";

/** Options of {@link FaultProxy}. */
export interface FaultProxyOptions {
  /** Where to forward. */
  targetHost: string;
  targetPort: number;
  /** Port to listen on, on 127.0.0.1. Default 0 (any free port). */
  port?: number;
}

/** Counters of what the proxy did. */
export interface FaultProxyStats {
  connections: number;
  resets: number;
  dropped: number;
  bytes: number;
}

interface Pipe {
  client: Socket;
  server?: Socket;
  /** Chunks held while blackholed (or before the server side connected), per direction. */
  held: { up: Buffer[]; down: Buffer[] };
  /** Earliest time the next chunk may be written, per direction (keeps order under delay). */
  nextAt: { up: number; down: number };
}

/** A TCP proxy with switchable faults. */
export class FaultProxy {
  readonly stats: FaultProxyStats = { connections: 0, resets: 0, dropped: 0, bytes: 0 };
  readonly #options: FaultProxyOptions;
  readonly #pipes = new Set<Pipe>();
  #server: Server | undefined;
  #delayMs = 0;
  #dropping = false;
  #blackholed = false;
  #port = 0;

  constructor(options: FaultProxyOptions) {
    this.#options = options;
  }

  /** The port the proxy listens on (after `start`). */
  get port(): number {
    return this.#port;
  }

  /** Open connections. */
  get open(): number {
    return this.#pipes.size;
  }

  /** Start listening on 127.0.0.1; resolves with the port. */
  start(): Promise<number> {
    const server = createServer({ noDelay: true }, (client) => this.#accept(client));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#options.port ?? 0, "127.0.0.1", () => {
        this.#port = (server.address() as { port: number }).port;
        resolve(this.#port);
      });
    });
  }

  #accept(client: Socket): void {
    this.stats.connections++;
    if (this.#dropping) {
      this.stats.dropped++;
      client.destroy();
      return;
    }
    const pipe: Pipe = { client, held: { up: [], down: [] }, nextAt: { up: 0, down: 0 } };
    this.#pipes.add(pipe);
    const end = () => this.#close(pipe);
    client.on("error", end);
    client.on("close", end);
    client.on("data", (chunk) => this.#forward(pipe, "up", chunk));
    if (!this.#blackholed) this.#connectServer(pipe);
  }

  #connectServer(pipe: Pipe): void {
    if (pipe.server || pipe.client.destroyed) return;
    const server = createConnection({ host: this.#options.targetHost, port: this.#options.targetPort, noDelay: true });
    pipe.server = server;
    const end = () => this.#close(pipe);
    server.on("error", end);
    server.on("close", end);
    server.on("data", (chunk) => this.#forward(pipe, "down", chunk));
    server.on("connect", () => this.#release(pipe));
  }

  #forward(pipe: Pipe, way: "up" | "down", chunk: Buffer): void {
    this.stats.bytes += chunk.length;
    const connected = pipe.server !== undefined && !pipe.server.connecting;
    if (this.#blackholed || !connected || pipe.held[way].length > 0) {
      pipe.held[way].push(chunk);
      return;
    }
    this.#write(pipe, way, chunk);
  }

  #write(pipe: Pipe, way: "up" | "down", chunk: Buffer): void {
    const to = way === "up" ? pipe.server : pipe.client;
    if (!to || to.destroyed) return;
    if (this.#delayMs <= 0 && pipe.nextAt[way] <= Date.now()) {
      to.write(chunk);
      return;
    }
    const at = Math.max(Date.now() + this.#delayMs, pipe.nextAt[way]);
    pipe.nextAt[way] = at;
    setTimeout(() => {
      if (!to.destroyed) to.write(chunk);
    }, at - Date.now());
  }

  #release(pipe: Pipe): void {
    if (this.#blackholed || !pipe.server || pipe.server.connecting) return;
    for (const way of ["up", "down"] as const) {
      const chunks = pipe.held[way].splice(0);
      for (const c of chunks) this.#write(pipe, way, c);
    }
  }

  #close(pipe: Pipe): void {
    if (!this.#pipes.delete(pipe)) return;
    pipe.client.destroy();
    pipe.server?.destroy();
  }

  /** Add `ms` of latency to every chunk both ways (0 to stop). */
  delay(ms: number): void {
    this.#delayMs = Math.max(0, ms);
  }

  /** Close new connections at once and end open ones while on. */
  drop(on: boolean): void {
    this.#dropping = on;
    if (!on) return;
    for (const pipe of [...this.#pipes]) {
      this.stats.dropped++;
      pipe.client.end();
      pipe.server?.end();
      this.#close(pipe);
    }
  }

  /** Reset every open connection now (both sides see ECONNRESET). */
  reset(): void {
    for (const pipe of [...this.#pipes]) {
      this.stats.resets++;
      this.#pipes.delete(pipe);
      pipe.client.resetAndDestroy();
      if (pipe.server && !pipe.server.connecting) pipe.server.resetAndDestroy();
      else pipe.server?.destroy();
    }
  }

  /** Hold every byte and every new connection while on; release them in order when off. */
  blackhole(on: boolean): void {
    this.#blackholed = on;
    if (on) return;
    for (const pipe of [...this.#pipes]) {
      if (!pipe.server) this.#connectServer(pipe);
      else this.#release(pipe);
    }
  }

  /** Stop listening and close every connection. */
  async close(): Promise<void> {
    this.#blackholed = false;
    for (const pipe of [...this.#pipes]) this.#close(pipe);
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
