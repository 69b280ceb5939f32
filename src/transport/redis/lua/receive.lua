-- receive.lua: lease up to `max` due messages across channels, highest priority first, then
-- oldest due, then id. Due messages are the ready ones, the delayed ones now due (moved to
-- ready first) and those whose lease ended (at most `cap` of each of the last two per channel
-- per call). Paused channels are skipped.
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix, ARGV[2] max, ARGV[3] leaseMs, ARGV[4] cap, ARGV[5..] channels.
-- Returns: { now, nextDue, token, envelopeJSON1, attempt1, runAt1, envelopeJSON2, ... }
--   (the id is the envelope's own; no copy is sent). runAt: '' when it is the envelope's own.
--   now: the server's time (ms); every lease ends at now + leaseMs.
--   token: the fencing token of every lease of this call (a lease is proven by id and token).
--   nextDue: when nothing was leased, the earliest time (ms) a delayed message or a lease
--   of these channels comes due, or -1 when none; 0 when something was leased.
local now = now_ms()
local max = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local now_text = int(now)
local paused = P .. ':paused'
local chans = {}
for i = 5, #ARGV do
  if redis.call('SISMEMBER', paused, ARGV[i]) == 0 then chans[#chans + 1] = ARGV[i] end
end

-- Due delayed messages move to ready (no visible change: waiting either way).
-- Expired leases stay active, their token still honoured, until a receive chooses them.
local zb = zbatch()
local cands = {}
for _, ch in ipairs(chans) do
  local dk = P .. ':d:' .. ch
  local ids = redis.call('ZRANGEBYSCORE', dk, '-inf', now_text, 'LIMIT', 0, cap)
  if #ids > 0 then
    local rk = P .. ':r:' .. ch
    for _, id in ipairs(ids) do
      local sc = redis.call('HGET', P .. ':h:' .. id, 'sc')
      if sc then zbatch_add(zb, rk, sc, id) end
    end
    zrem_many(dk, ids)
  end
  local ak = P .. ':a:' .. ch
  local expired = redis.call('ZRANGEBYSCORE', ak, '-inf', now_text, 'LIMIT', 0, cap)
  if #expired > 0 then
    local orphans = {}
    for _, id in ipairs(expired) do
      local sc = redis.call('HGET', P .. ':h:' .. id, 'sc')
      if sc then cands[#cands + 1] = { id, ch, sc, tonumber(sc), true } else orphans[#orphans + 1] = id end
    end
    if #orphans > 0 then zrem_many(ak, orphans) end
  end
end
zbatch_flush(zb)

-- Choose: the first `max` of each channel's ready set and its expired leases, merged by (score, id).
local chosen = {}
if #chans == 1 and #cands == 0 then
  local r = redis.call('ZRANGE', P .. ':r:' .. chans[1], 0, max - 1, 'WITHSCORES')
  for j = 1, #r, 2 do chosen[#chosen + 1] = { r[j], chans[1], r[j + 1] } end
elseif #chans > 0 then
  for _, ch in ipairs(chans) do
    local r = redis.call('ZRANGE', P .. ':r:' .. ch, 0, max - 1, 'WITHSCORES')
    for j = 1, #r, 2 do cands[#cands + 1] = { r[j], ch, r[j + 1], tonumber(r[j + 1]), false } end
  end
  table.sort(cands, function(x, y)
    if x[4] ~= y[4] then return x[4] < y[4] end
    return x[1] < y[1]
  end)
  for j = 1, math.min(max, #cands) do chosen[j] = cands[j] end
end

if #chosen == 0 then
  local next_due = -1
  for _, ch in ipairs(chans) do
    for _, k in ipairs({ P .. ':d:' .. ch, P .. ':a:' .. ch }) do
      local first = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
      if first[2] then
        local at = math.ceil(tonumber(first[2]))
        if next_due < 0 or at < next_due then next_due = at end
      end
    end
  end
  return { now, next_due }
end

local expires = int(now + lease)
local tok = int(redis.call('INCR', P .. ':tok')) .. '.' .. now_text
local out = { now, 0, tok }
local per_channel = {}
local leased = zbatch()
for _, c in ipairs(chosen) do
  local id, ch = c[1], c[2]
  local hk = P .. ':h:' .. id
  local json = redis.call('GET', P .. ':m:' .. id)
  if not c[5] then per_channel[ch] = (per_channel[ch] or 0) + 1 end
  if json then
    local v = redis.call('HMGET', hk, 'a', 'r', 'ch')
    local attempt = next_attempt(v[1] or '0')
    if v[3] then
      redis.call('HSET', hk, 'st', 'active', 'a', attempt, 'tok', tok, 'sa', now_text)
    else
      -- First state of a message sent due now: ch and sc are written once, here.
      redis.call('HSET', hk, 'st', 'active', 'a', attempt, 'tok', tok, 'sa', now_text, 'ch', ch, 'sc', c[3])
    end
    zbatch_add(leased, P .. ':a:' .. ch, expires, id)
    local o = #out
    out[o + 1] = json
    out[o + 2] = attempt
    out[o + 3] = v[2] or ''
  end
end
for ch, k in pairs(per_channel) do
  redis.call('ZREMRANGEBYRANK', P .. ':r:' .. ch, 0, k - 1)
end
zbatch_flush(leased)
return out
