-- extend.lua: extend leases to now + leaseMs (fenced by token).
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix, ARGV[2] leaseMs; then 2 per item: id, token.
-- Returns: { now, then one integer per item: 1 extended, 0 refused (not active, or not this token) }.
local now = now_ms()
local expires = int(now + tonumber(ARGV[2]))
local out = { now }
local n = (#ARGV - 2) / 2
for i = 0, n - 1 do
  local b = 3 + i * 2
  local id = ARGV[b]
  local hk = P .. ':h:' .. id
  local v = redis.call('HMGET', hk, 'st', 'tok', 'ch')
  if v[1] == 'active' and v[2] == ARGV[b + 1] then
    redis.call('ZADD', P .. ':a:' .. v[3], expires, id)
    out[i + 2] = 1
  else
    out[i + 2] = 0
  end
end
return out
