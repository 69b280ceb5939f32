/**
 * Ferry's PostgreSQL schema: the name check, and the numbered SQL migrations in
 * `./migrations` (`NNN_name.sql`), applied in order under an advisory lock and
 * recorded in `<schema>.migrations`. `ferry migrate` calls {@link migrate}.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { FerryError } from "../../core/errors.ts";
import { mapPgError } from "./pg-errors.ts";
import { retentionFromParams, type RetentionOptions } from "../retention.ts";

/** Schema names: a lowercase letter or `_`, then up to 47 lowercase letters, digits or `_`. */
export const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,47}$/;

/** The default schema name, `ferry`. */
export const DEFAULT_SCHEMA = "ferry";

/**
 * Check a schema name against the allowlist and return it double-quoted, ready to
 * put in SQL. The only identifier Ferry ever interpolates.
 * @throws FerryError `INVALID_NAME`
 */
export function quoteSchema(schema: unknown): string {
  if (typeof schema !== "string" || !SCHEMA_PATTERN.test(schema) || schema.startsWith("pg_")) {
    throw new FerryError("INVALID_NAME", `schema ${JSON.stringify(schema)} is not valid: use 1-48 characters of lowercase letters, digits and "_", starting with a letter or "_" (not "pg_")`, { details: { kind: "schema" } });
  }
  return `"${schema}"`;
}

/** The LISTEN/NOTIFY channel on which a schema's receivers are woken (payload: the Ferry channel). */
export function notifyChannel(schema: string): string {
  return `ferry:${schema}`;
}

/** One numbered migration file. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), "migrations");

/** The migrations shipped with this version of Ferry, in order. */
export function listMigrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f.slice(0, -4), sql: readFileSync(join(MIGRATIONS_DIR, f), "utf8") }));
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** A `postgres://` connection string. Used when `pool` and `client` are absent. */
  connectionString?: string;
  /** A pool to borrow one connection from (left open). */
  pool?: pg.Pool;
  /** A connected client to use (left open; must not be inside a transaction). */
  client?: pg.ClientBase;
  /** Ferry's schema. Default `"ferry"`. */
  schema?: string;
}

/** What {@link migrate} did. */
export interface MigrateResult {
  schema: string;
  /** Names of the migrations applied now (empty when already up to date). */
  applied: string[];
  /** The schema's version afterwards. */
  version: number;
}

/**
 * Create or upgrade Ferry's schema. Idempotent and safe to run from several
 * processes at once (they queue on an advisory lock).
 * @throws FerryError `INVALID_NAME`, `TRANSPORT_UNAVAILABLE`, `CONFIG_INVALID`
 */
export async function migrate(options: MigrateOptions = {}): Promise<MigrateResult> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const q = quoteSchema(schema);
  let client: pg.ClientBase;
  let release: () => Promise<void>;
  try {
    if (options.client) {
      client = options.client;
      release = async () => {};
    } else if (options.pool) {
      const c = await options.pool.connect();
      client = c;
      release = async () => c.release();
    } else {
      if (!options.connectionString) throw new FerryError("INVALID_OPTION", "migrate needs a connectionString, a pool or a client");
      const c = new pg.Client({ connectionString: options.connectionString });
      c.on("error", () => {});
      await c.connect();
      client = c;
      release = () => c.end();
    }
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw mapPgError(err, "connecting to migrate", schema);
  }
  try {
    await client.query("BEGIN");
    try {
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`ferry.migrate:${schema}`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${q}.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const done = new Set((await client.query<{ version: number }>(`SELECT version FROM ${q}.migrations`)).rows.map((r) => r.version));
      const applied: string[] = [];
      let version = done.size === 0 ? 0 : Math.max(...done);
      for (const m of listMigrations()) {
        if (done.has(m.version)) continue;
        await client.query(m.sql.replaceAll("{{schema}}", q));
        await client.query(`INSERT INTO ${q}.migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
        applied.push(m.name);
        version = Math.max(version, m.version);
      }
      await client.query("COMMIT");
      return { schema, applied, version };
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw mapPgError(err, "migrating", schema);
    }
  } finally {
    await release();
  }
}

/** Ferry's settings read from a `postgres://` URL, and the URL left for `pg`. */
export interface PostgresUrlSettings {
  /** The URL without Ferry's parameters. */
  connectionString: string;
  /** `?schema=`; absent means the default, `"ferry"`. */
  schema?: string;
  /** `?migrate=false` turns off migrating on open. Default `true`. */
  migrate: boolean;
  /** `?poolSize=`; absent means the default, `10`. */
  poolSize?: number;
  /** `?completedCount=&completedAge=&deadCount=&deadAge=` (`none`: no limit); absent means the defaults. */
  retention?: RetentionOptions;
}

/**
 * Split a transport URL such as `postgres://user@host/db?schema=ferry&migrate=false&poolSize=10`
 * into Ferry's settings and the connection string for `pg`.
 * @throws FerryError `INVALID_URL`
 */
export function parsePostgresUrl(url: URL | string): PostgresUrlSettings {
  let u: URL;
  try {
    u = new URL(url.toString());
  } catch (err) {
    throw new FerryError("INVALID_URL", "the PostgreSQL URL cannot be parsed; expected e.g. postgres://user@127.0.0.1:5432/app?schema=ferry", { cause: err });
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new FerryError("INVALID_URL", `a PostgreSQL URL starts with postgres:// or postgresql://, got ${JSON.stringify(u.protocol)}`);
  }
  const schema = u.searchParams.get("schema");
  const migrateParam = u.searchParams.get("migrate");
  const poolParam = u.searchParams.get("poolSize");
  for (const k of ["schema", "migrate", "poolSize"]) u.searchParams.delete(k);
  const retention = retentionFromParams(u.searchParams);
  if (migrateParam !== null && migrateParam !== "true" && migrateParam !== "false") {
    throw new FerryError("INVALID_URL", `migrate must be "true" or "false" in the PostgreSQL URL, got ${JSON.stringify(migrateParam)}`);
  }
  const settings: PostgresUrlSettings = { connectionString: u.toString(), migrate: migrateParam !== "false" };
  if (schema !== null) settings.schema = schema;
  if (retention) settings.retention = retention;
  if (poolParam !== null) {
    const n = Number(poolParam);
    if (!Number.isInteger(n)) throw new FerryError("INVALID_URL", `poolSize must be a whole number in the PostgreSQL URL, got ${JSON.stringify(poolParam)}`);
    settings.poolSize = n;
  }
  return settings;
}

/**
 * `ferry migrate` for a transport URL: create or upgrade the schema named by
 * `?schema=` (default `ferry`).
 * @throws FerryError `INVALID_URL`, `INVALID_NAME`, `TRANSPORT_UNAVAILABLE`, `CONFIG_INVALID`
 */
export function migrateUrl(url: URL | string): Promise<MigrateResult> {
  const settings = parsePostgresUrl(url);
  return migrate(settings.schema === undefined ? { connectionString: settings.connectionString } : { connectionString: settings.connectionString, schema: settings.schema });
}
