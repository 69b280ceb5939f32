-- release.lua: give back leases read ahead and never handed out (fenced by token): each
-- message is waiting again, due as before (its ready score kept), with no attempt used.
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix; then 2 per item: id, token.
-- Returns: one integer per item: 1 released, 0 refused (not active, or not this token).
local out = {}
local touched = {}
local zb = zbatch()
local n = (#ARGV - 1) / 2
for i = 0, n - 1 do
  local b = 2 + i * 2
  local id, tok = ARGV[b], ARGV[b + 1]
  local hk = P .. ':h:' .. id
  local v = redis.call('HMGET', hk, 'st', 'tok', 'ch', 'sc', 'a')
  if v[1] == 'active' and v[2] == tok then
    local attempt = tonumber(v[5]) - 1
    if attempt < 1 then
      redis.call('HSET', hk, 'st', 'waiting', 'a', '0')
      redis.call('HDEL', hk, 'sa')
    else
      redis.call('HSET', hk, 'st', 'waiting', 'a', int(attempt))
    end
    local ch = v[3]
    redis.call('ZREM', P .. ':a:' .. ch, id)
    zbatch_add(zb, P .. ':r:' .. ch, v[4], id)
    touched[ch] = (touched[ch] or 0) + 1
    out[i + 1] = 1
  else
    out[i + 1] = 0
  end
end
zbatch_flush(zb)
for ch, count in pairs(touched) do notify(ch, count) end
return out
