-- discard.lua: delete dead messages for good.
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix, ARGV[2..] ids.
-- Returns: the ids removed (ids not found or not dead are left out).
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local v = redis.call('HMGET', P .. ':h:' .. id, 'st', 'ch')
  if v[1] == 'dead' then
    redis.call('ZREM', P .. ':s:dead:' .. v[2], id)
    delete_message(id)
    out[#out + 1] = id
  end
end
return out
