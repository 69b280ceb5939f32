-- 002_inspection_indexes: counts and lists read indexes, not the whole table.
--
-- Takes: {{schema}}, the quoted name of Ferry's own schema (as 001).
-- Changes:
--   messages_receive   gains INCLUDE (state), so counting live rows (waiting,
--                      delayed, active) by channel is an index-only scan of the
--                      live rows; a receive writes no more index entries than before.
--   messages_finished  becomes (state, channel, seq): finished rows are counted by
--                      state and channel from the index alone, and listed newest
--                      first per channel (all channels: one descent per channel).
-- Returns: nothing. Runs inside the migration runner's transaction; rebuilding the
-- indexes locks the messages table for writes while it runs.

DROP INDEX {{schema}}.messages_receive;
CREATE INDEX messages_receive ON {{schema}}.messages (channel, priority DESC, due_at, seq) INCLUDE (state)
  WHERE state IN ('waiting', 'active');

DROP INDEX {{schema}}.messages_finished;
CREATE INDEX messages_finished ON {{schema}}.messages (state, channel, seq)
  WHERE state IN ('completed', 'cancelled', 'dead');
