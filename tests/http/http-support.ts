/**
 * A Ferry on a fresh SQLite file with a few tasks, served over real HTTP on a
 * free port, and small fetch helpers. Each call makes its own file and closes
 * everything in `stop()`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { createFerry, defineEvent, defineTask, Unrecoverable, type Ferry } from "../../src/index.ts";
import { serve, type RunningServer, type ServeOptions } from "../../src/http/server.ts";

export const READ_TOKEN = "read-token-0123456789abcdef";
export const ADMIN_TOKEN = "admin-token-0123456789abcdef";

export const addTask = defineTask("math.add", { schema: z.object({ a: z.number(), b: z.number() }), run: async ({ a, b }) => ({ sum: a + b }) });
export const welcomeTask = defineTask("email.welcome", { channel: "emails", schema: z.object({ email: z.string() }), run: async ({ email }) => ({ sent: email }) });
export const failTask = defineTask("always.fails", { retry: { attempts: 1 }, run: () => { throw new Unrecoverable("it never works"); } });
export const userRegistered = defineEvent("user.registered", z.object({ email: z.string().email() }));

export interface Api {
  ferry: Ferry;
  server: RunningServer;
  url: string;
  /** fetch with the read token (or `token`), JSON content type when a body is given. */
  call(method: string, path: string, init?: { body?: unknown; token?: string | null; headers?: Record<string, string> }): Promise<Response>;
  stop(): Promise<void>;
}

export async function startApi(options: ServeOptions = {}): Promise<Api> {
  const dir = mkdtempSync(join(tmpdir(), "ferry-http-"));
  const ferry = createFerry({ transport: `sqlite://${join(dir, "ferry.db")}`, tasks: [addTask, welcomeTask, failTask] });
  ferry.on(userRegistered, welcomeTask, { channel: "emails" });
  const server = await serve(ferry, { port: 0, tokens: { read: [READ_TOKEN], admin: [ADMIN_TOKEN] }, events: [userRegistered], ...options });
  const call: Api["call"] = (method, path, init = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    const token = init.token === undefined ? READ_TOKEN : init.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (init.body !== undefined) {
      body = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
      headers["content-type"] ??= "application/json";
    }
    return fetch(server.url + path, { method, headers, ...(body === undefined ? {} : { body }) });
  };
  return {
    ferry,
    server,
    url: server.url,
    call,
    async stop() {
      await server.close();
      await ferry.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The `error.code` of a JSON error response (and the body is drained). */
export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { error?: { code?: string } };
  return body.error?.code;
}

/** Wait until `check` is true, up to `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Read server-sent events from a streaming response until it ends or `stop` says so. */
export async function readEvents(res: Response, stop: (events: Array<{ event: string; data: unknown }>) => boolean = () => false): Promise<Array<{ event: string; data: unknown }>> {
  const events: Array<{ event: string; data: unknown }> = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
    }
    if (stop(events)) {
      await reader.cancel();
      break;
    }
  }
  return events;
}
