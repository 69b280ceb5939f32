/**
 * `ferry dead list|replay|discard`: the dead-letter store.
 */
import type { Command } from "commander";
import { FerryError } from "../../core/errors.ts";
import { hasDeadLetterAdmin, isInspectable, type DeadLetterAdmin, type Inspectable, type MessageRecord, type Transport } from "../../transport/types.ts";
import { formatTable, ProgressBar, type TextOut } from "../output.ts";
import { parseInteger } from "../parse.ts";
import { openTarget, type TargetOptions } from "../target.ts";

/** Options shared by the `ferry dead` commands. */
export interface DeadOptions extends TargetOptions {
  channel?: string;
  all?: boolean;
  limit?: number;
  json?: boolean;
}

type DeadStore = Transport & Inspectable & DeadLetterAdmin;

function deadStore(t: Transport): DeadStore {
  if (!isInspectable(t) || !hasDeadLetterAdmin(t)) throw new FerryError("NOT_SUPPORTED", `the ${t.kind} transport has no dead-letter store to list or replay`);
  return t;
}

const PAGE = 500;

/** What a replay or discard did. */
export interface DeadActionResult {
  /** Ids acted on. */
  done: string[];
  /** Ids asked for that were not in the dead-letter store. */
  missing: string[];
}

/**
 * Replay or discard dead messages: the given ids, or with `all` every dead
 * message (of `channel` when given), page by page, ticking `progress`.
 */
export async function actOnDead(
  action: "replay" | "discard",
  ids: readonly string[],
  options: DeadOptions,
  onStart?: (total: number) => void,
  onProgress?: (n: number) => void,
): Promise<DeadActionResult> {
  const target = await openTarget(options);
  try {
    const stores = target.transports.map((t) => deadStore(t.transport));
    const done: string[] = [];
    if (!options.all) {
      let left = [...new Set(ids)];
      for (const store of stores) {
        if (left.length === 0) break;
        const moved = await store[action](left);
        done.push(...moved);
        const set = new Set(moved);
        left = left.filter((id) => !set.has(id));
      }
      return { done, missing: left };
    }
    let total = 0;
    for (const store of stores) {
      for (const c of await store.counts()) if (options.channel === undefined || c.channel === options.channel) total += c.dead;
    }
    onStart?.(total);
    for (const store of stores) {
      // Acted-on messages leave the dead state, so the next page starts after the ones that stayed.
      let skipped = 0;
      for (;;) {
        const page = await store.list({ state: "dead", limit: PAGE, offset: skipped, ...(options.channel === undefined ? {} : { channel: options.channel }) });
        if (page.length === 0) break;
        const moved = await store[action](page.map((r) => r.message.id));
        done.push(...moved);
        skipped += page.length - moved.length;
        onProgress?.(moved.length);
      }
    }
    return { done, missing: [] };
  } finally {
    await target.close();
  }
}

/** Dead messages of the target, newest first. */
export async function listDead(options: DeadOptions): Promise<MessageRecord[]> {
  const target = await openTarget(options);
  try {
    const out: MessageRecord[] = [];
    for (const { transport } of target.transports) {
      const page = await deadStore(transport).list({ state: "dead", limit: options.limit ?? 50, ...(options.channel === undefined ? {} : { channel: options.channel }) });
      out.push(...page);
    }
    return out.sort((a, b) => (b.finishedAt ?? 0) - (a.finishedAt ?? 0)).slice(0, options.limit ?? 50);
  } finally {
    await target.close();
  }
}

function oneLine(text: string, max = 80): string {
  const flat = text.replace(/\s+/g, " ");
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

function targetOptions(cmd: Command): Command {
  return cmd
    .option("--app <path>", "app module that exports a Ferry: acts on every transport it uses")
    .option("--transport <url>", "transport URL (default: $FERRY_URL, else sqlite://./data/ferry.db)")
    .option("--channel <name>", "only this channel");
}

/** Add `ferry dead` and its subcommands to the program. */
export function deadCommand(program: Command, out: TextOut, err: TextOut): void {
  const dead = program.command("dead").description("list, replay or discard messages in the dead-letter store");

  targetOptions(dead.command("list").description("list dead messages, newest first"))
    .option("--limit <n>", "at most this many (default 50)", parseInteger(1, 100_000))
    .option("--json", "print JSON records instead of a table")
    .action(async (opts: DeadOptions) => {
      const records = await listDead(opts);
      if (opts.json) {
        out.write(`${JSON.stringify(records, null, 2)}\n`);
        return;
      }
      if (records.length === 0) {
        out.write("no dead messages\n");
        return;
      }
      const rows = records.map((r) => {
        const last = r.errors[r.errors.length - 1];
        return [r.message.id, r.message.channel, r.message.name, `${r.message.attempt}/${r.message.maxAttempts}`, r.finishedAt ? new Date(r.finishedAt).toISOString() : "", last ? oneLine(`${last.code}: ${last.message}`) : ""];
      });
      out.write(`${formatTable(["id", "channel", "task", "attempts", "died at", "last error"], rows)}\n`);
    });

  for (const action of ["replay", "discard"] as const) {
    const verb = action === "replay" ? "replayed" : "discarded";
    targetOptions(
      dead
        .command(action)
        .description(action === "replay" ? "move dead messages back to waiting, due now, attempts reset" : "delete dead messages for good")
        .argument("[ids...]", "message ids"),
    )
      .option("--all", `${action} every dead message (of --channel when given)`)
      .addHelpText("after", `\nExamples:\n  ferry dead ${action} 0190f6c2-... 0190f6c3-...\n  ferry dead ${action} --all --channel emails`)
      .action(async (ids: string[], opts: DeadOptions, cmd: Command) => {
        if (opts.all && ids.length > 0) cmd.error("error: give message ids or --all, not both", { exitCode: 2, code: "ferry.usage" });
        if (!opts.all && ids.length === 0) cmd.error("error: give message ids, or --all for every dead message", { exitCode: 2, code: "ferry.usage" });
        if (!opts.all && opts.channel !== undefined) cmd.error("error: --channel goes with --all; ids already name their messages", { exitCode: 2, code: "ferry.usage" });
        let bar: ProgressBar | undefined;
        const result = await actOnDead(action, ids, opts, (total) => (bar = new ProgressBar(err, action, total)), (n) => bar?.tick(n));
        bar?.finish();
        out.write(`${verb} ${result.done.length} message${result.done.length === 1 ? "" : "s"}\n`);
        if (result.missing.length > 0) {
          throw new FerryError("NOT_FOUND", `not in the dead-letter store: ${result.missing.join(", ")}`, { details: { ids: result.missing } });
        }
      });
  }
}
