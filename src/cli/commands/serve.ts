/**
 * `ferry serve`: the HTTP API of an app, from src/http/server.ts, loaded only
 * when this command runs.
 */
import type { Command } from "commander";
import { loadApp } from "../../bus/app-module.ts";
import type { Ferry } from "../../bus/ferry.ts";
import { FerryError } from "../../core/errors.ts";
import type { TextOut } from "../output.ts";
import { parseInteger } from "../parse.ts";

type Serve = (ferry: Ferry, options: { port?: number; host?: string }) => Promise<{ url: string; port: number; close(): Promise<void> }>;

async function loadServe(): Promise<Serve> {
  let mod: { serve?: Serve };
  try {
    // Resolved at run time, so the CLI builds and runs without the HTTP module.
    mod = (await import(new URL("../../http/server.ts", import.meta.url).href)) as { serve?: Serve };
  } catch (err) {
    throw new FerryError("NOT_SUPPORTED", `the HTTP API is not available in this build (src/http/server.ts could not be loaded: ${(err as Error)?.message ?? String(err)})`, { cause: err });
  }
  if (typeof mod.serve !== "function") throw new FerryError("NOT_SUPPORTED", "the HTTP API is not available in this build: src/http/server.ts exports no serve()");
  return mod.serve;
}

/** Add `ferry serve` to the program. */
export function serveCommand(program: Command, out: TextOut, err: TextOut): void {
  program
    .command("serve")
    .description("serve an app's HTTP API (enqueue, poll, stream) until SIGTERM or SIGINT")
    .requiredOption("--app <path>", "app module that exports a Ferry (default export or `ferry`)")
    .option("--port <n>", "port to listen on (default 8080; 0 picks a free one)", parseInteger(0, 65_535))
    .option("--host <host>", "address to listen on (default 127.0.0.1)")
    .action(async (opts: { app: string; port?: number; host?: string }) => {
      // Listen for the stop signal first, so one that arrives while starting still stops cleanly.
      const stop = new Promise<void>((resolve) => {
        process.once("SIGTERM", resolve);
        process.once("SIGINT", resolve);
      });
      const serve = await loadServe();
      const ferry = await loadApp(opts.app);
      let server: Awaited<ReturnType<Serve>>;
      try {
        server = await serve(ferry, { ...(opts.port === undefined ? {} : { port: opts.port }), ...(opts.host === undefined ? {} : { host: opts.host }) });
      } catch (e) {
        await ferry.close().catch(() => undefined);
        throw e;
      }
      out.write(`ferry serve: listening on ${server.url}\n`);
      await stop;
      err.write("ferry serve: stopping\n");
      await server.close();
      await ferry.close();
    });
}
