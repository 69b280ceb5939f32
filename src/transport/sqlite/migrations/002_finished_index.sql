-- 002_finished_index: finished rows by state, channel and arrival.
--
-- Takes: the schema of 001 (PRAGMA user_version = 1).
-- Returns: nothing; leaves user_version = 2 (set by the migration runner).
--
-- Retention walks each channel's finished rows oldest first and finds the newest N
-- (sqlite-admin.ts, retain); listing finished records newest first reads the same
-- index. Partial, so live rows (and a receive) never touch it; an ack inserts one entry.

CREATE INDEX ferry_messages_finished
  ON ferry_messages (state, channel, seq)
  WHERE state IN ('completed', 'cancelled', 'dead');
