-- discard.lua: delete dead messages for good.
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix, ARGV[2..] ids.
-- Returns: the ids removed (ids not found or not dead are left out).
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local mk = P .. ':m:' .. id
  local v = redis.call('HMGET', mk, 'st', 'ch')
  if v[1] == 'dead' then
    redis.call('ZREM', P .. ':s:dead:' .. v[2], id)
    redis.call('DEL', mk)
    out[#out + 1] = id
  end
end
return out
