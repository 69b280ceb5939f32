// @ts-check
/**
 * The executor host: a worker thread of the pool's process that starts the
 * executor child processes and relays their IPC. Plain JavaScript, so the thread
 * needs no TypeScript loader (a loader registered at run time, as `bin/ferry.js`
 * does, does not reach worker threads in Node 20).
 *
 * Why a thread: starting a child (`fork()` in libuv) stops the calling thread
 * while the kernel copies the parent's page tables, 5 to 20 ms for a worker
 * process of 80 to 200 MB measured here. On the main thread that stalls every
 * lease, settle and hand-over of the worker each time an executor is replaced;
 * here it delays only the relay of other executors' messages.
 *
 * The thread owns the `ChildProcess` objects; the pool holds an
 * `ExecutorHandle` per child (`executor-handle.ts`). Messages: `host-protocol.ts`.
 */
import { fork } from "node:child_process";
import { setPriority } from "node:os";
import { parentPort } from "node:worker_threads";

/** @typedef {import("./host-protocol.ts").HostCommand} HostCommand */
/** @typedef {import("./host-protocol.ts").HostEvent} HostEvent */

const port = /** @type {import("node:worker_threads").MessagePort} */ (parentPort);
/** @type {Map<number, import("node:child_process").ChildProcess>} */
const children = new Map();
/** @param {HostEvent} e */
const post = (e) => port.postMessage(e);

port.on("message", (/** @type {HostCommand} */ c) => {
  if (c.op === "spawn") {
    let proc;
    try {
      proc = fork(c.file, [], { execArgv: c.execArgv, env: c.env, stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" });
    } catch (err) {
      post({ ev: "error", key: c.key, message: /** @type {Error} */ (err).message });
      post({ ev: "exit", key: c.key, code: null, signal: null });
      return;
    }
    const key = c.key;
    children.set(key, proc);
    if (c.priority !== undefined && proc.pid) {
      try {
        setPriority(proc.pid, c.priority);
      } catch {
        // Not allowed here: it starts at the pool's priority.
      }
    }
    post({ ev: "spawned", key, pid: proc.pid ?? 0 });
    proc.on("message", (msg) => post({ ev: "message", key, msg }));
    proc.on("disconnect", () => post({ ev: "disconnect", key }));
    proc.on("error", (err) => post({ ev: "error", key, message: err.message }));
    proc.on("exit", (code, signal) => {
      children.delete(key);
      post({ ev: "exit", key, code, signal });
    });
    return;
  }
  const proc = children.get(c.key);
  if (c.op === "send") {
    if (!proc?.connected) return; // it is exiting: its exit event fails what it ran
    const key = c.key;
    proc.send(/** @type {import("node:child_process").Serializable} */ (c.msg), (err) => {
      if (!err) return;
      post({ ev: "error", key, message: `could not hand it a message (${err.message}); killing it` });
      proc.kill("SIGKILL");
    });
  } else if (c.op === "kill") {
    proc?.kill(c.signal);
  } else if (c.op === "disconnect") {
    if (proc?.connected) proc.disconnect();
  }
});
