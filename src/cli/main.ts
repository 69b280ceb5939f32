/**
 * The `ferry` command line: worker, stats, dead, migrate, serve.
 *
 * Exit codes: 0 done; 1 a Ferry error (printed as `ferry: CODE: message`, with
 * the stack only under `--debug`); 2 a usage error (bad flag or argument).
 */
import { Command, CommanderError } from "commander";
import { FerryError, toError } from "../core/errors.ts";
import { deadCommand } from "./commands/dead.ts";
import { migrateCommand } from "./commands/migrate.ts";
import { serveCommand } from "./commands/serve.ts";
import { statsCommand } from "./commands/stats.ts";
import { workerCommand } from "./commands/worker.ts";
import type { TextOut } from "./output.ts";

/** Where the CLI writes. Default: the process's stdout and stderr. */
export interface CliStreams {
  out: TextOut;
  err: TextOut;
}

/** Build the program (without running it). */
export function buildProgram(streams: CliStreams = { out: process.stdout, err: process.stderr }): Command {
  const program = new Command("ferry")
    .description("Ferry: run workers, inspect channels and manage dead letters")
    .option("--debug", "print stack traces of errors")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => void streams.out.write(text),
      writeErr: (text) => void streams.err.write(text),
    })
    .showHelpAfterError("(add --help for usage)");
  workerCommand(program, streams.out, streams.err);
  statsCommand(program, streams.out);
  deadCommand(program, streams.out, streams.err);
  migrateCommand(program, streams.out);
  serveCommand(program, streams.out, streams.err);
  return program;
}

/**
 * Run the CLI with `argv` (as `process.argv`: node, script, then arguments).
 * Resolves with the exit code; never throws.
 */
export async function main(argv: readonly string[] = process.argv, streams: CliStreams = { out: process.stdout, err: process.stderr }): Promise<number> {
  const program = buildProgram(streams);
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (thrown) {
    if (thrown instanceof CommanderError) {
      // Help and version exit 0; every usage mistake exits 2 (commander already printed it).
      return thrown.exitCode === 0 ? 0 : 2;
    }
    const debug = program.opts().debug === true || argv.includes("--debug");
    const err = toError(thrown);
    if (thrown instanceof FerryError) streams.err.write(`ferry: ${thrown.code}: ${thrown.message}\n`);
    else streams.err.write(`ferry: ${err.message}\n`);
    if (debug) streams.err.write(`${err.stack ?? ""}\n${err.cause === undefined ? "" : `cause: ${String((err.cause as Error)?.stack ?? err.cause)}\n`}`);
    else if (!(thrown instanceof FerryError)) streams.err.write("(run with --debug for the stack trace)\n");
    return 1;
  }
}
