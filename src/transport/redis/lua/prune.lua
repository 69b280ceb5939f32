-- prune.lua: delete finished messages of one state and channel that finished before a time.
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix, ARGV[2] state ('completed' | 'cancelled' | 'dead'), ARGV[3] channel,
-- ARGV[4] before (ms, exclusive), ARGV[5] cap (most deleted by this call).
-- Returns: how many were deleted (call again while it equals cap).
local sk = P .. ':s:' .. ARGV[2] .. ':' .. ARGV[3]
local ids = redis.call('ZRANGEBYSCORE', sk, '-inf', '(' .. ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
delete_messages(ids)
if #ids > 0 then zrem_many(sk, ids) end
return #ids
