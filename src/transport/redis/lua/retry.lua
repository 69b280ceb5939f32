-- retry.lua: return leased messages to waiting, due at a time (fenced by token).
-- A snooze (attemptUsed 0) takes the attempt counter back down by one.
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix; then 5 per item: id, token, runAt (ms), attemptUsed ('1' | '0'), error JSON ('' for none).
-- Returns: one integer per item: 1 done, 0 refused (not active, or not this token).
local now = now_ms()
local out = {}
local touched = {}
local zb = zbatch()
local n = (#ARGV - 1) / 5
for i = 0, n - 1 do
  local b = 2 + i * 5
  local id, tok, run_at, used, e = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local hk = P .. ':h:' .. id
  local v = redis.call('HMGET', hk, 'st', 'tok', 'ch', 'sc', 'a', 'err')
  if v[1] == 'active' and v[2] == tok then
    local attempt = v[5]
    if used == '0' and tonumber(attempt) > 0 then attempt = int(tonumber(attempt) - 1) end
    local score = rescore(v[4], tonumber(run_at))
    if e ~= '' then
      redis.call('HSET', hk, 'st', 'waiting', 'r', run_at, 'a', attempt, 'sc', score, 'err', append_error(v[6], e))
    else
      redis.call('HSET', hk, 'st', 'waiting', 'r', run_at, 'a', attempt, 'sc', score)
    end
    local ch = v[3]
    redis.call('ZREM', P .. ':a:' .. ch, id)
    enqueue(zb, id, ch, score, run_at, now)
    touched[ch] = (touched[ch] or 0) + 1
    out[i + 1] = 1
  else
    out[i + 1] = 0
  end
end
zbatch_flush(zb)
for ch, count in pairs(touched) do notify(ch, count) end
return out
