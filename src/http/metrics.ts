/**
 * Prometheus metrics on a registry of the app's own (never the global one):
 * runs by task and status, run durations, transport call durations from the
 * `transport:call` events, HTTP requests by route, and queue counts per channel
 * and state read from the transports at scrape time.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Ferry } from "../bus/ferry.ts";
import { isInspectable, MESSAGE_STATES } from "../transport/types.ts";
import { transportsOf } from "./messages.ts";

/** The metrics of one app. */
export class FerryMetrics {
  readonly registry = new Registry();
  readonly #runs: Counter<"task" | "status" | "channel">;
  readonly #runDuration: Histogram<"task" | "status">;
  readonly #transportCalls: Histogram<"transport" | "op" | "outcome">;
  readonly #http: Counter<"method" | "route" | "status">;
  #unlisten: Array<() => void>;

  constructor(ferry: Ferry) {
    const registers = [this.registry];
    this.#runs = new Counter({ name: "ferry_runs_total", help: "Runs (attempts) finished, by task, status and channel.", labelNames: ["task", "status", "channel"], registers });
    this.#runDuration = new Histogram({
      name: "ferry_run_duration_seconds",
      help: "Handler run time from start to outcome.",
      labelNames: ["task", "status"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300],
      registers,
    });
    this.#transportCalls = new Histogram({
      name: "ferry_transport_call_duration_seconds",
      help: "Time of each call across the transport seam.",
      labelNames: ["transport", "op", "outcome"],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.#http = new Counter({ name: "ferry_http_requests_total", help: "HTTP API requests answered, by route and status.", labelNames: ["method", "route", "status"], registers });
    new Gauge({
      name: "ferry_messages",
      help: "Stored messages per channel and state, read from the transports at scrape time.",
      labelNames: ["channel", "state"],
      registers,
      async collect() {
        this.reset();
        for (const t of await transportsOf(ferry)) {
          if (!isInspectable(t)) continue;
          for (const c of await t.counts()) {
            for (const state of MESSAGE_STATES) this.set({ channel: c.channel, state }, c[state]);
            this.set({ channel: c.channel, state: "delayed" }, c.delayed);
          }
        }
      },
    });
    new Gauge({
      name: "ferry_requests_pending",
      help: "request() callers of this process waiting for a reply.",
      registers,
      async collect() {
        this.set((await ferry.requestStats()).pending);
      },
    });
    this.#unlisten = [
      ferry.events.on("run", (r) => {
        this.#runs.inc({ task: r.task, status: r.status, channel: r.channel });
        this.#runDuration.observe({ task: r.task, status: r.status }, r.durationMs / 1000);
      }),
      ferry.events.on("transport:call", (c) => {
        this.#transportCalls.observe({ transport: c.transport, op: c.op, outcome: c.error ? "error" : "ok" }, c.durationMs / 1000);
      }),
    ];
  }

  /** Count one answered HTTP request. `route` is the route pattern, never the raw path. */
  request(method: string, route: string, status: number): void {
    this.#http.inc({ method, route, status: String(status) });
  }

  /** Stop listening to the Ferry. */
  close(): void {
    for (const off of this.#unlisten) off();
  }
}
