-- counts.lua: counts of messages by state for every known channel, at one instant.
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix.
-- Returns: { now, then 8 per channel: channel, ready, delayedDue, delayedFuture, active,
--   completed, cancelled, dead } (waiting = ready + delayedDue + delayedFuture).
local now = now_ms()
local out = { now }
local chans = redis.call('SMEMBERS', P .. ':channels')
for _, ch in ipairs(chans) do
  local dk = P .. ':d:' .. ch
  local future = redis.call('ZCOUNT', dk, '(' .. int(now), '+inf')
  out[#out + 1] = ch
  out[#out + 1] = redis.call('ZCARD', P .. ':r:' .. ch)
  out[#out + 1] = redis.call('ZCARD', dk) - future
  out[#out + 1] = future
  out[#out + 1] = redis.call('ZCARD', P .. ':a:' .. ch)
  out[#out + 1] = redis.call('ZCARD', P .. ':s:completed:' .. ch)
  out[#out + 1] = redis.call('ZCARD', P .. ':s:cancelled:' .. ch)
  out[#out + 1] = redis.call('ZCARD', P .. ':s:dead:' .. ch)
end
return out
