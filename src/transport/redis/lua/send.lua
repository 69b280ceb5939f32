-- send.lua: store new messages (one call per batch, atomic).
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix; then, in order, header arguments and messages:
--   a header: five arguments, '|' or '!', channel, runAt (ms), ready score, dedupKey ('' for none);
--     it applies to the messages after it, up to the next header (the client writes one only
--     when one of these changes, so a batch of one task costs two arguments per message).
--     '!' marks messages sent without a delay (runAt not after their createdAt): due on
--     arrival, so the script reads the server's TIME only for a '|' header.
--     The ready score is (1000 - priority) * 2^42 + floor(runAt), as integer text (computed by
--     the client, where it is cheap). Message ids never start with '|' or '!'.
--   a message: two arguments, its id and its envelope JSON.
-- Returns: only the messages not stored, as pairs: index (1-based, in this call), then the id
-- of the live message already holding its dedupKey, or its own id when that id is already
-- stored. Empty when every message was stored (no reply string per stored message).
local now -- the server's time, read for the first '|' header only
local out = {}
local touched = {}
local dedup_key = P .. ':dedup'
local mkey = P .. ':m:'
local zb = zbatch()
local ch, run_at, score, dk, due, zkey, zscore
local n = 0
local b = 2
local last = #ARGV
while b <= last do
  local id = ARGV[b]
  if id == '|' or id == '!' then -- a header: channel, runAt, score, dedupKey
    ch, run_at, score, dk = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
    if id == '!' then
      due = true
    else
      now = now or now_ms()
      due = tonumber(run_at) <= now
    end
    if due then zkey, zscore = P .. ':r:' .. ch, score else zkey, zscore = P .. ':d:' .. ch, run_at end
    b = b + 5
  else
    n = n + 1
    local existing = false
    if dk ~= '' then existing = redis.call('HGET', dedup_key, dk) end
    if existing then
      out[#out + 1] = n
      out[#out + 1] = existing
    elseif not redis.call('SET', mkey .. id, ARGV[b + 1], 'NX') then
      out[#out + 1] = n
      out[#out + 1] = id
    else
      if dk ~= '' then
        redis.call('HSET', dedup_key, dk, id)
        redis.call('HSET', P .. ':h:' .. id, 'st', 'waiting', 'ch', ch, 'sc', score, 'r', run_at, 'dk', dk)
      elseif not due then
        redis.call('HSET', P .. ':h:' .. id, 'st', 'waiting', 'ch', ch, 'sc', score, 'r', run_at)
      end
      zbatch_add(zb, zkey, zscore, id)
      touched[ch] = (touched[ch] or 0) + 1
    end
    b = b + 2
  end
end
zbatch_flush(zb)
for c, count in pairs(touched) do
  redis.call('SADD', P .. ':channels', c)
  notify(c, count)
end
return out
