/**
 * The PostgreSQL transport's public surface, for a `ferry/postgres` entry point:
 * the transport, the outbox relay, and the migration functions `ferry migrate` calls.
 */
export { PostgresTransport, type PostgresTransportOptions } from "./postgres-transport.ts";
export { OutboxRelay, type OutboxRelayOptions } from "./outbox-relay.ts";
export {
  DEFAULT_SCHEMA,
  SCHEMA_PATTERN,
  listMigrations,
  migrate,
  migrateUrl,
  parsePostgresUrl,
  type MigrateOptions,
  type MigrateResult,
  type Migration,
  type PostgresUrlSettings,
} from "./migrate.ts";
