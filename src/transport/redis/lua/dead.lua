-- dead.lua: move leased messages to the dead-letter store (fenced by token), append the
-- error to each one's history, then trim the dead sets touched past retention.
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix, ARGV[2] keepCount (-1: no limit), ARGV[3] keepAgeMs (-1: no limit), ARGV[4] trim cap;
-- then 3 per item: id, token, error JSON.
-- Returns: one integer per item: 1 done, 0 refused (not active, or not this token).
local now = now_ms()
local now_text = int(now)
local keep_count, keep_age, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
local touched = {}
local n = (#ARGV - 4) / 3
for i = 0, n - 1 do
  local b = 5 + i * 3
  local id, tok = ARGV[b], ARGV[b + 1]
  local hk = P .. ':h:' .. id
  local v = redis.call('HMGET', hk, 'st', 'tok', 'ch', 'dk', 'err')
  if v[1] == 'active' and v[2] == tok then
    redis.call('HSET', hk, 'st', 'dead', 'tok', '', 'fa', now_text, 'err', append_error(v[5], ARGV[b + 2]))
    local ch = v[3]
    redis.call('ZREM', P .. ':a:' .. ch, id)
    local sk = P .. ':s:dead:' .. ch
    redis.call('ZADD', sk, now_text, id)
    touched[sk] = true
    release_dedup(v[4], id)
    out[i + 1] = 1
  else
    out[i + 1] = 0
  end
end
for sk in pairs(touched) do trim(sk, keep_count, keep_age, now, cap) end
return out
