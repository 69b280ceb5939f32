-- retain.lua: apply the retention rules to channels whose records no ack trims any more (a
-- channel nobody sends to now, a reply inbox of a process that exited), and forget channels
-- left with nothing at all. The ack and dead scripts trim the channels they touch; this is the
-- background sweep for the rest (at most `cap` records per finished set per call).
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix, ARGV[2] completed keepCount, ARGV[3] completed keepAgeMs, ARGV[4] dead keepCount,
-- ARGV[5] dead keepAgeMs (-1: no limit), ARGV[6] cap; ARGV[7..] channels.
-- Returns: { records deleted, channels forgotten }.
local now = now_ms()
local cc, ca, dc, da = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local cap = tonumber(ARGV[6])
local deleted, forgotten = 0, 0
for i = 7, #ARGV do
  local ch = ARGV[i]
  local left = 0
  for _, st in ipairs({ 'completed', 'cancelled', 'dead' }) do
    local sk = P .. ':s:' .. st .. ':' .. ch
    local before = redis.call('ZCARD', sk)
    if before > 0 then
      if st == 'dead' then trim(sk, dc, da, now, cap) else trim(sk, cc, ca, now, cap) end
      local after = redis.call('ZCARD', sk)
      deleted = deleted + before - after
      left = left + after
    end
  end
  -- Nothing ready, delayed, active or kept, and not paused: forget the channel (a send adds it again).
  if left == 0 and redis.call('EXISTS', P .. ':r:' .. ch, P .. ':d:' .. ch, P .. ':a:' .. ch) == 0
    and redis.call('SISMEMBER', P .. ':paused', ch) == 0 then
    redis.call('SREM', P .. ':channels', ch)
    redis.call('DEL', P .. ':n:' .. ch)
    forgotten = forgotten + 1
  end
end
return { deleted, forgotten }
