-- send.lua: store new messages (one call per batch, atomic).
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix; then 7 per message: id, channel, priority, runAt (ms), dedupKey ('' for none), envelope JSON,
--   ready score ((1000 - priority) * 2^42 + floor(runAt), as integer text: computed by the client, where it is cheap).
-- Returns: one string per message: '' when stored, else the id of the live message already
-- holding its dedupKey, or its own id when that id is already stored (nothing new is stored).
local now = now_ms()
local out = {}
local touched = {}
local dedup_key = P .. ':dedup'
local zb = zbatch()
local n = (#ARGV - 1) / 7
for i = 0, n - 1 do
  local b = 2 + i * 7
  local id, ch, prio, run_at, dk = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local existing = false
  if dk ~= '' then existing = redis.call('HGET', dedup_key, dk) end
  local mk = P .. ':m:' .. id
  if existing then
    out[i + 1] = existing
  elseif redis.call('EXISTS', mk) == 1 then
    out[i + 1] = id
  else
    if dk ~= '' then
      redis.call('HSET', mk, 'e', ARGV[b + 5], 'ch', ch, 'st', 'waiting', 'a', '0', 'r', run_at, 'p', prio, 'dk', dk)
      redis.call('HSET', dedup_key, dk, id)
    else
      redis.call('HSET', mk, 'e', ARGV[b + 5], 'ch', ch, 'st', 'waiting', 'a', '0', 'r', run_at, 'p', prio)
    end
    enqueue(zb, id, ch, nil, run_at, now, ARGV[b + 6])
    touched[ch] = (touched[ch] or 0) + 1
    out[i + 1] = ''
  end
end
zbatch_flush(zb)
for ch, count in pairs(touched) do
  redis.call('SADD', P .. ':channels', ch)
  notify(ch, count)
end
return out
