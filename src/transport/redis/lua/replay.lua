-- replay.lua: move dead messages back to waiting, due now, attempts reset to 0.
-- The error history is kept; the dedupKey is taken again unless another live message holds it.
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix, ARGV[2..] ids.
-- Returns: the ids moved (ids not found or not dead are left out).
local now = now_ms()
local now_text = int(now)
local out = {}
local touched = {}
local zb = zbatch()
for i = 2, #ARGV do
  local id = ARGV[i]
  local mk = P .. ':m:' .. id
  local v = redis.call('HMGET', mk, 'st', 'ch', 'p', 'dk')
  if v[1] == 'dead' then
    local ch = v[2]
    redis.call('ZREM', P .. ':s:dead:' .. ch, id)
    redis.call('HSET', mk, 'st', 'waiting', 'a', '0', 'r', now_text)
    redis.call('HDEL', mk, 'fa')
    if v[4] and v[4] ~= '' then redis.call('HSETNX', P .. ':dedup', v[4], id) end
    enqueue(zb, id, ch, tonumber(v[3]), now_text, now)
    touched[ch] = (touched[ch] or 0) + 1
    out[#out + 1] = id
  end
end
zbatch_flush(zb)
for ch, count in pairs(touched) do notify(ch, count) end
return out
