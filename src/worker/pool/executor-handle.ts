/**
 * The pool's side of its executor host thread (`executor-host.js`): one
 * {@link ExecutorHost} per pool, one {@link ExecutorHandle} per executor child.
 * A handle offers the part of `ChildProcess` the pool uses (`send`, `kill`,
 * `disconnect`, `connected`, `pid`, and the `message`, `exit` and `error` events),
 * so starting a child never blocks the pool's own thread.
 */
import { EventEmitter } from "node:events";
import { Worker } from "node:worker_threads";
import type { HostCommand, HostEvent } from "./host-protocol.ts";

const HOST = new URL("./executor-host.js", import.meta.url);

/** One executor child, as seen from the pool's thread. */
export class ExecutorHandle extends EventEmitter {
  /** The child's process id; 0 until the host reports it started. */
  pid = 0;
  /** True until the IPC channel closes (disconnect or exit). */
  connected = true;
  readonly #host: ExecutorHost;
  readonly #key: number;

  constructor(host: ExecutorHost, key: number) {
    super();
    this.#host = host;
    this.#key = key;
  }

  /**
   * Relay a message to the child. A message it cannot take gets it killed (an `error`
   * event says why), so its `exit` fails what it was running: a child the pool cannot
   * talk to is of no use.
   * @returns false when the channel was already closed (nothing was sent)
   */
  send(msg: unknown): boolean {
    if (!this.connected) return false;
    this.#host.command({ op: "send", key: this.#key, msg });
    return true;
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    this.#host.command({ op: "kill", key: this.#key, signal });
  }

  /** Close the IPC channel: the executor finishes what it runs and exits. */
  disconnect(): void {
    if (!this.connected) return;
    this.#host.command({ op: "disconnect", key: this.#key });
  }
}

/** A worker thread that starts executor children and relays their messages. */
export class ExecutorHost {
  readonly #worker: Worker;
  readonly #handles = new Map<number, ExecutorHandle>();
  #key = 0;
  #terminated = false;

  constructor() {
    // The host needs no loader or flags of ours; it only forks and relays.
    this.#worker = new Worker(HOST, { execArgv: [], stdout: false, stderr: false });
    this.#worker.on("message", (e: HostEvent) => this.#onEvent(e));
    this.#worker.on("error", (err) => {
      for (const h of this.#handles.values()) h.emit("error", err);
    });
  }

  /** Start a child running `file` with these Node flags and environment, at `priority` (a nice value) if given. */
  spawn(file: string, execArgv: string[], env: NodeJS.ProcessEnv, priority?: number): ExecutorHandle {
    const key = ++this.#key;
    const handle = new ExecutorHandle(this, key);
    this.#handles.set(key, handle);
    this.command({ op: "spawn", key, file, execArgv, env, ...(priority === undefined ? {} : { priority }) });
    return handle;
  }

  /** @internal */
  command(c: HostCommand): void {
    if (!this.#terminated) this.#worker.postMessage(c);
  }

  #onEvent(e: HostEvent): void {
    const h = this.#handles.get(e.key);
    if (!h) return;
    switch (e.ev) {
      case "spawned":
        h.pid = e.pid;
        return;
      case "message":
        h.emit("message", e.msg);
        return;
      case "disconnect":
        h.connected = false;
        return;
      case "error":
        h.emit("error", new Error(e.message));
        return;
      case "exit":
        h.connected = false;
        this.#handles.delete(e.key);
        h.emit("exit", e.code, e.signal);
    }
  }

  /** Stop the host thread (after its children are gone). */
  async close(): Promise<void> {
    this.#terminated = true;
    await this.#worker.terminate();
  }
}
