-- retain.lua: apply one finished state's retention rule to channels whose records no ack
-- trims any more (a channel nobody sends to now, a reply inbox of a process that exited), and
-- forget channels left with nothing at all. The ack and dead scripts trim the channels they
-- touch; this is the background sweep for the rest (at most `cap` records per channel per call).
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix, ARGV[2] state ('completed' | 'cancelled' | 'dead'), ARGV[3] keepCount,
-- ARGV[4] keepAgeMs (-1: no limit), ARGV[5] cap; ARGV[6..] channels.
-- Returns: records deleted.
local now = now_ms()
local st, keep_count, keep_age, cap = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local deleted = 0
for i = 6, #ARGV do
  local ch = ARGV[i]
  local sk = P .. ':s:' .. st .. ':' .. ch
  local before = redis.call('ZCARD', sk)
  if before > 0 then
    trim(sk, keep_count, keep_age, now, cap)
    deleted = deleted + before - redis.call('ZCARD', sk)
  end
  -- Nothing ready, delayed, active or kept, and not paused: forget the channel (a send adds it again).
  if redis.call('EXISTS', P .. ':r:' .. ch, P .. ':d:' .. ch, P .. ':a:' .. ch, P .. ':s:completed:' .. ch,
      P .. ':s:cancelled:' .. ch, P .. ':s:dead:' .. ch) == 0
    and redis.call('SISMEMBER', P .. ':paused', ch) == 0 then
    redis.call('SREM', P .. ':channels', ch)
    redis.call('DEL', P .. ':n:' .. ch)
  end
end
return deleted
