-- send-one.lua: store one message sent without a delay or a dedupKey (a single dispatch).
-- The same writes as send.lua makes for such a message, in a script of its own: send.lua's
-- tables, loops and helper closures cost more than these writes (about 3 us of 12 per call).
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix, ARGV[2] channel, ARGV[3] ready score (as in send.lua), ARGV[4] id,
-- ARGV[5] envelope JSON.
-- Returns: as send.lua: empty when stored, { 1, id } when the id is already stored.
local id, ch = ARGV[4], ARGV[2]
if not redis.call('SET', P .. ':m:' .. id, ARGV[5], 'NX') then return { 1, id } end
redis.call('ZADD', P .. ':r:' .. ch, ARGV[3], id)
redis.call('SADD', P .. ':channels', ch)
notify(ch, 1)
return {}
