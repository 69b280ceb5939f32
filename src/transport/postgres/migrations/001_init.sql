-- 001_init: Ferry's PostgreSQL schema, version 1.
--
-- Takes: {{schema}}, the quoted name of Ferry's own schema (checked against an
--   allowlist before it is substituted; nothing else is substituted).
-- Creates:
--   {{schema}}.messages      one row per message = its run record
--   {{schema}}.paused        channels that deliver nothing until resumed
--   {{schema}}.append_error  (history jsonb, error jsonb, cap int) -> jsonb, a capped history
--   triggers that NOTIFY 'ferry:<schema>' with the channel name as payload when
--   messages are inserted (by Ferry or by any other producer) or become waiting again,
--   unless the session set ferry.notify = 'off' (Ferry's own pool does, and notifies
--   after commit instead: a NOTIFY inside a writing transaction holds a global lock
--   through its commit flush, which serializes concurrent commits).
-- Returns: nothing. Runs inside the migration runner's transaction.
--
-- Times are milliseconds since the epoch (double precision, so any JS number
-- round-trips), compared with the database clock: extract(epoch from now()) * 1000.

CREATE TABLE {{schema}}.messages (
  seq          bigint GENERATED ALWAYS AS IDENTITY,
  id           text COLLATE "C" NOT NULL PRIMARY KEY,
  channel      text COLLATE "C" NOT NULL,
  name         text NOT NULL,
  payload      json NOT NULL,
  headers      json NOT NULL DEFAULT '{}',
  -- waiting | active | completed | cancelled | dead
  state        text COLLATE "C" NOT NULL DEFAULT 'waiting'
               CHECK (state IN ('waiting', 'active', 'completed', 'cancelled', 'dead')),
  priority     smallint NOT NULL DEFAULT 0,
  attempt      integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 3,
  -- the envelope's runAt
  run_at       double precision NOT NULL,
  -- when the row can be received: run_at while waiting, the lease expiry while active
  due_at       double precision NOT NULL,
  -- fencing token, incremented by every receive
  token        bigint NOT NULL DEFAULT 0,
  dedup_key    text COLLATE "C",
  created_at   double precision NOT NULL,
  started_at   double precision,
  finished_at  double precision,
  -- capped history of failed attempts: [{at, attempt, code, message}]
  errors       jsonb NOT NULL DEFAULT '[]',
  result       json
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- Receive: live rows of a channel by priority, then due time, then arrival.
-- Partial, so finished rows (usually the bulk of the table) cost receive nothing.
CREATE INDEX messages_receive ON {{schema}}.messages (channel, priority DESC, due_at, seq)
  WHERE state IN ('waiting', 'active');

-- Dedup: a key is held while its message is live.
CREATE UNIQUE INDEX messages_dedup ON {{schema}}.messages (dedup_key)
  WHERE dedup_key IS NOT NULL AND state IN ('waiting', 'active');

-- Inspection (list newest first) and pruning of finished rows. Partial, so a
-- receive (waiting -> active) never writes to it, and no query is tempted to
-- walk the dead 'active' entries every acked row leaves behind.
CREATE INDEX messages_finished ON {{schema}}.messages (state, seq)
  WHERE state IN ('completed', 'cancelled', 'dead');

CREATE TABLE {{schema}}.paused (
  channel   text COLLATE "C" NOT NULL PRIMARY KEY,
  paused_at timestamptz NOT NULL DEFAULT now()
);

-- Append one error to a capped history, keeping the first and the newest.
CREATE FUNCTION {{schema}}.append_error(history jsonb, error jsonb, cap integer) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN jsonb_array_length(history) < cap THEN history || jsonb_build_array(error)
    ELSE jsonb_build_array(history -> 0)
         || coalesce((SELECT jsonb_agg(e ORDER BY i) FROM jsonb_array_elements(history) WITH ORDINALITY AS a(e, i)
                      WHERE i > jsonb_array_length(history) - (cap - 2)), '[]'::jsonb)
         || jsonb_build_array(error)
  END
$$;

-- Wake receivers: one NOTIFY per channel per statement of inserts.
CREATE FUNCTION {{schema}}.notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('ferry.notify', true) IS DISTINCT FROM 'off' THEN
    PERFORM pg_notify('ferry:' || TG_TABLE_SCHEMA, c) FROM (SELECT DISTINCT channel AS c FROM inserted) AS d;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER messages_notify_insert AFTER INSERT ON {{schema}}.messages
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.notify_inserted();

-- Wake receivers when a row becomes waiting again (retry, replay, admin updates).
CREATE FUNCTION {{schema}}.notify_waiting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('ferry.notify', true) IS DISTINCT FROM 'off' THEN
    PERFORM pg_notify('ferry:' || TG_TABLE_SCHEMA, NEW.channel);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER messages_notify_waiting AFTER UPDATE ON {{schema}}.messages
  FOR EACH ROW WHEN (NEW.state = 'waiting') EXECUTE FUNCTION {{schema}}.notify_waiting();
