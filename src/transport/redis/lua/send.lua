-- send.lua: store new messages (one call per batch, atomic).
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix; then 6 per message: id, channel, runAt (ms), dedupKey ('' for none), envelope JSON,
--   ready score ((1000 - priority) * 2^42 + floor(runAt), as integer text: computed by the client, where it is cheap).
-- Returns: only the messages not stored, as pairs: index (1-based, in this call), then the id
-- of the live message already holding its dedupKey, or its own id when that id is already
-- stored. Empty when every message was stored (no reply string per stored message).
local now = now_ms()
local out = {}
local touched = {}
local dedup_key = P .. ':dedup'
local zb = zbatch()
local n = (#ARGV - 1) / 6
for i = 0, n - 1 do
  local b = 2 + i * 6
  local id, ch, run_at, dk, score = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 5]
  local existing = false
  if dk ~= '' then existing = redis.call('HGET', dedup_key, dk) end
  if existing then
    out[#out + 1] = i + 1
    out[#out + 1] = existing
  elseif not redis.call('SET', P .. ':m:' .. id, ARGV[b + 4], 'NX') then
    out[#out + 1] = i + 1
    out[#out + 1] = id
  else
    local due = tonumber(run_at) <= now
    if dk ~= '' then
      redis.call('HSET', dedup_key, dk, id)
      redis.call('HSET', P .. ':h:' .. id, 'st', 'waiting', 'ch', ch, 'sc', score, 'r', run_at, 'dk', dk)
    elseif not due then
      redis.call('HSET', P .. ':h:' .. id, 'st', 'waiting', 'ch', ch, 'sc', score, 'r', run_at)
    end
    if due then
      zbatch_add(zb, P .. ':r:' .. ch, score, id)
    else
      zbatch_add(zb, P .. ':d:' .. ch, run_at, id)
    end
    touched[ch] = (touched[ch] or 0) + 1
  end
end
zbatch_flush(zb)
for ch, count in pairs(touched) do
  redis.call('SADD', P .. ':channels', ch)
  notify(ch, count)
end
return out
