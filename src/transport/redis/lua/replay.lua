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
  local hk = P .. ':h:' .. id
  local v = redis.call('HMGET', hk, 'st', 'ch', 'sc', 'dk')
  if v[1] == 'dead' then
    local ch = v[2]
    local score = rescore(v[3], now)
    redis.call('ZREM', P .. ':s:dead:' .. ch, id)
    redis.call('HSET', hk, 'st', 'waiting', 'a', '0', 'r', now_text, 'sc', score)
    redis.call('HDEL', hk, 'fa')
    if v[4] and v[4] ~= '' then redis.call('HSETNX', P .. ':dedup', v[4], id) end
    zbatch_add(zb, P .. ':r:' .. ch, score, id)
    touched[ch] = (touched[ch] or 0) + 1
    out[#out + 1] = id
  end
end
zbatch_flush(zb)
for ch, count in pairs(touched) do notify(ch, count) end
return out
