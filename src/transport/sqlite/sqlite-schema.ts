/**
 * Opening the SQLite file: pragmas, and numbered schema migrations tracked by
 * `PRAGMA user_version`. Migrations live in `migrations/NNN_name.sql` and run
 * in order, each in its own `BEGIN IMMEDIATE` transaction, so several processes
 * opening one new file at once migrate it exactly once.
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { FerryError } from "../../core/errors.ts";
import { busyTimeoutOf } from "./sqlite-errors.ts";

/** How hard SQLite flushes to disk on commit. */
export type SqliteSynchronous = "off" | "normal" | "full" | "extra";

/** Connection settings applied by {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** File path, or `":memory:"` for a private in-memory database. */
  path: string;
  /** `PRAGMA synchronous`. Default `"normal"` (under WAL: survives a process crash; the last commits may be lost on power loss). */
  synchronous?: SqliteSynchronous;
  /** How long opening (and migrating) waits for another process's write lock, in ms. Default 5000. */
  busyTimeoutMs?: number;
}

/** One numbered migration. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);

/** The migrations shipped with Ferry, in order of version. */
export function loadMigrations(): Migration[] {
  const files = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return files.map((file, i) => {
    const version = Number(file.slice(0, 3));
    if (version !== i + 1) throw new Error(`sqlite migrations must be numbered 001, 002, ... without gaps; found ${file}`);
    return { version, name: file.slice(4, -4), sql: readFileSync(new URL(file, MIGRATIONS_DIR), "utf8") };
  });
}

/**
 * Bring the schema up to date. Each step checks `user_version` again inside its
 * write transaction, so a concurrent opener never applies a step twice.
 * @returns the schema version afterwards
 * @throws FerryError `TRANSPORT_UNAVAILABLE` when the file was written by a newer Ferry
 */
export function migrate(db: Database.Database, migrations: readonly Migration[] = loadMigrations()): number {
  const latest = migrations.length;
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > latest) {
    throw new FerryError("TRANSPORT_UNAVAILABLE", `the SQLite file has schema version ${current}, newer than this Ferry knows (${latest}); upgrade Ferry`, { details: { version: current, latest } });
  }
  for (const m of migrations) {
    const step = db.transaction(() => {
      const now = db.pragma("user_version", { simple: true }) as number;
      if (now >= m.version) return;
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    });
    step.immediate();
  }
  return db.pragma("user_version", { simple: true }) as number;
}

/**
 * Open one connection in WAL mode with the given settings and migrate it.
 * Creates the parent folder when missing.
 * @throws FerryError `TRANSPORT_UNAVAILABLE` when the file cannot be opened
 */
export function openDatabase(options: OpenDatabaseOptions): Database.Database {
  const memory = options.path === ":memory:";
  let db: Database.Database;
  try {
    if (!memory) mkdirSync(dirname(options.path), { recursive: true });
    db = new Database(options.path);
  } catch (err) {
    throw new FerryError("TRANSPORT_UNAVAILABLE", `cannot open the SQLite file ${JSON.stringify(options.path)}: ${(err as Error).message}`, { cause: err });
  }
  try {
    db.pragma(`busy_timeout = ${busyTimeoutOf(options.busyTimeoutMs)}`);
    if (!memory) {
      const mode = db.pragma("journal_mode = WAL", { simple: true });
      if (mode !== "wal") throw new Error(`journal_mode is ${String(mode)}, WAL is required`);
    }
    db.pragma(`synchronous = ${options.synchronous ?? "normal"}`);
    db.pragma("foreign_keys = OFF");
    db.pragma("temp_store = MEMORY");
    migrate(db);
    // From here on the transport waits for other processes' write locks itself, on timers
    // (see lockWait in sqlite-errors.ts): SQLite's own wait would block the event loop.
    db.pragma("busy_timeout = 0");
  } catch (err) {
    db.close();
    if (err instanceof FerryError) throw err;
    throw new FerryError("TRANSPORT_UNAVAILABLE", `cannot prepare the SQLite file ${JSON.stringify(options.path)}: ${(err as Error).message}`, { cause: err });
  }
  return db;
}
