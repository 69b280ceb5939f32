/**
 * `ferry migrate`: bring a transport's storage up to date. Opening an SQLite or
 * PostgreSQL transport migrates it; a transport with a `migrate()` method is
 * asked to as well.
 */
import type { Command } from "commander";
import { redactUrl } from "../../transport/registry.ts";
import type { TextOut } from "../output.ts";
import { openTransport } from "../target.ts";

/** Open the transport at `url`, migrate it, and close it. Returns what the transport's `migrate()` said, if anything. */
export async function migrateTransport(url: string): Promise<{ kind: string; result: unknown }> {
  const transport = await openTransport(url);
  try {
    const migrate = (transport as unknown as { migrate?: () => Promise<unknown> }).migrate;
    const result = typeof migrate === "function" ? await migrate.call(transport) : undefined;
    return { kind: transport.kind, result };
  } finally {
    await transport.close();
  }
}

/** Add `ferry migrate` to the program. */
export function migrateCommand(program: Command, out: TextOut): void {
  program
    .command("migrate")
    .description("create or upgrade a transport's storage (tables, indexes, queues)")
    .requiredOption("--transport <url>", "transport URL, e.g. sqlite://./data/ferry.db or postgres://user@host/db")
    .action(async (opts: { transport: string }) => {
      const { kind, result } = await migrateTransport(opts.transport);
      const extra = result === undefined ? "" : ` (${JSON.stringify(result)})`;
      out.write(`${kind} transport at ${redactUrl(opts.transport)} is up to date${extra}\n`);
    });
}
