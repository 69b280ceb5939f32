-- 003_update_room: pages of messages keep half their space free, for the row's updates.
--
-- Takes: {{schema}}, the quoted name of Ferry's own schema (as 001).
-- Changes:
--   messages  fillfactor 50. Every message is written three times: sent, leased,
--             acked (more with retries). A lease or an ack changes indexed columns,
--             so PostgreSQL writes a new version of the row; on a full page that
--             version goes to another page, which costs a bigger WAL record (the
--             whole row, where a version on the same page logs only what changed)
--             and a lock record more, and leaves the table three versions wide until
--             vacuum. With room on the page: lease and ack wrote 764 bytes of WAL per
--             message against 1,363, 20,000 processed messages took 14.9 MB of heap
--             after vacuum against 21.6 MB, and processing at concurrency 50 went up
--             by about 5 % (7 alternated pairs, 6 higher). The price: a backlog waiting
--             to be leased takes twice the pages (14.9 against 7.1 MB for 20,000 messages).
--             Applies to pages written from now on; existing pages keep their fill.
-- Returns: nothing. Runs inside the migration runner's transaction (a quick
-- catalog change; it takes a brief lock on the table).

ALTER TABLE {{schema}}.messages SET (fillfactor = 50);
