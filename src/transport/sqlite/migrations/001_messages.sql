-- 001_messages: the message table, which is also the run record, and paused channels.
--
-- Takes: an empty database (PRAGMA user_version = 0).
-- Returns: nothing; leaves user_version = 1 (set by the migration runner).
--
-- One row per message. The envelope's fields are columns (payload and headers
-- as JSON text), next to the run record: state, fencing token, lease expiry,
-- attempt, capped error history (JSON array), result (JSON), start and finish
-- times. Receive is one UPDATE of this row; ack is one UPDATE of this row.
--
-- state (internal): 'ready' (waiting and due), 'delayed' (waiting, runAt in the
-- future when last written; promoted to 'ready' by receive once due), 'active',
-- 'completed', 'cancelled', 'dead'. 'ready' and 'delayed' are both reported as
-- "waiting".
--
-- dedup_claim: the dedupKey while this message holds it (live states), else
-- NULL. Uniqueness is enforced on the claim, not on dedup_key, so a replayed
-- dead message whose key is held by another live message keeps its envelope's
-- dedupKey unchanged and simply does not claim it (as the memory transport does).

CREATE TABLE ferry_messages (
  seq              INTEGER PRIMARY KEY,          -- insertion order (FIFO tie-break)
  id               TEXT    NOT NULL UNIQUE,
  v                INTEGER NOT NULL,
  channel          TEXT    NOT NULL,
  name             TEXT    NOT NULL,
  payload          TEXT    NOT NULL,             -- JSON
  headers          TEXT    NOT NULL,             -- JSON object of strings
  attempt          INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL,
  run_at           INTEGER NOT NULL,             -- ms since the epoch
  priority         INTEGER NOT NULL DEFAULT 0,
  dedup_key        TEXT,
  dedup_claim      TEXT,
  created_at       INTEGER NOT NULL,
  state            TEXT    NOT NULL,
  token            TEXT,                         -- current lease's fencing token
  lease_expires_at INTEGER,
  errors           TEXT,                         -- JSON array of AttemptError, capped
  result           TEXT,                         -- JSON
  started_at       INTEGER,
  finished_at      INTEGER
);

-- Receive: due ('ready') and leased ('active') messages of a channel in
-- delivery order. Every 'ready' row is due, so a receive reads at most
-- max + (live leases) entries, however long the backlog.
CREATE INDEX ferry_messages_receive
  ON ferry_messages (channel, priority DESC, run_at, seq)
  WHERE state IN ('ready', 'active');

-- Promotion of delayed messages and the next due time of a channel.
CREATE INDEX ferry_messages_delayed
  ON ferry_messages (channel, run_at)
  WHERE state = 'delayed';

-- One live holder per dedupKey.
CREATE UNIQUE INDEX ferry_messages_dedup
  ON ferry_messages (dedup_claim)
  WHERE dedup_claim IS NOT NULL;

CREATE TABLE ferry_paused_channels (
  channel   TEXT    PRIMARY KEY,
  paused_at INTEGER NOT NULL
) WITHOUT ROWID;
