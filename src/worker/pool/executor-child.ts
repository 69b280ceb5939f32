/**
 * An executor child process: loads the app module (to find the task handlers),
 * then runs handlers on request from its pool and reports each result.
 * It never touches the transport; leases and settling stay with the parent.
 */
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { FerryError } from "../../core/errors.ts";
import type { TaskContext, TaskDefinition } from "../../bus/define.ts";
import { findFerry } from "../../bus/app-module.ts";
import { toWireError, type FromChild, type ToChild } from "./protocol.ts";

const send = (m: FromChild) => {
  if (process.connected) process.send?.(m);
};
const running = new Map<number, AbortController>();

async function main(): Promise<void> {
  const app = process.env.FERRY_POOL_APP;
  if (!app) {
    send({ type: "fatal", message: "FERRY_POOL_APP is not set" });
    process.exit(1);
  }
  let tasks: Map<string, TaskDefinition>;
  try {
    const mod = (await import(pathToFileURL(resolve(app)).href)) as Record<string, unknown>;
    const ferry = findFerry(mod, app);
    tasks = new Map(ferry.tasks().map((t) => [t.name, t]));
  } catch (err) {
    send({ type: "fatal", message: `cannot load app ${app}: ${(err as Error)?.message ?? String(err)}` });
    process.exit(1);
  }
  process.on("unhandledRejection", (reason) => {
    send({ type: "warning", code: "UNHANDLED_REJECTION", message: `a handler left a promise rejection unhandled: ${(reason as Error)?.message ?? String(reason)}` });
  });
  process.on("message", (m: ToChild) => {
    if (m.type === "abort") {
      running.get(m.rid)?.abort(new FerryError(m.code, m.message));
      return;
    }
    void run(tasks, m);
  });
  process.on("disconnect", () => process.exit(0));
  send({ type: "ready", pid: process.pid, tasks: [...tasks.keys()] });
}

async function run(tasks: Map<string, TaskDefinition>, m: Extract<ToChild, { type: "run" }>): Promise<void> {
  const controller = new AbortController();
  running.set(m.rid, controller);
  const task = tasks.get(m.task);
  try {
    if (!task) throw new FerryError("NO_HANDLER", `the executor's app has no task "${m.task}"`);
    const ctx: TaskContext = { ...m.ctx, task: m.task, signal: controller.signal, sync: false };
    const result = await task.run(m.payload, ctx);
    send({ type: "result", rid: m.rid, ok: true, result, rss: process.memoryUsage.rss() });
  } catch (err) {
    send({ type: "result", rid: m.rid, ok: false, error: toWireError(err), rss: process.memoryUsage.rss() });
  } finally {
    running.delete(m.rid);
  }
}

void main();
