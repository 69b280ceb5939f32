-- lib.lua: helpers for the Ferry scripts (not a script of its own). Each script gets the
-- header block below plus the blocks (split at blank lines) defining what it calls.
-- Every script takes ARGV[1] = the key prefix; keys are derived from it
-- (standalone Redis, or a prefix in braces so every key shares one cluster slot).
-- Key layout, with P the prefix and CH a channel:
--   P:m:ID     string the envelope JSON as sent (stored once, never rewritten)
--   P:h:ID     hash   state, created when first needed (a message sent due now, without a
--                     dedupKey, has none until its first lease; it is then waiting, attempt 0):
--                     st (state), a (attempt), r (runAt ms, when it differs from the JSON's),
--                     sc (ready score), ch (sc and ch are always written together),
--                     dk (dedupKey), tok (lease token; the lease end is the score in P:a:CH),
--                     sa, fa (started / finished ms), err (error history: JSON objects joined
--                     by "\n", which JSON text never contains raw), res (result JSON)
--   P:r:CH     zset   ready (due) messages, score (1000 - priority) * 2^42 + floor(runAt)
--   P:d:CH     zset   delayed messages, score runAt
--   P:a:CH     zset   active messages, score lease end
--   P:s:STATE:CH zset completed / cancelled / dead, score finishedAt
--   P:n:CH     list   wake-up tokens for blocked receivers (capped)
--   P:dedup    hash   dedupKey -> id of the live message holding it
--   P:channels set    every channel ever sent to
--   P:paused   set    paused channels
--   P:tok      string lease token counter
-- ARGV[1] may carry a test clock after '@' ("prefix@1700000000000"): then that is "now"
-- instead of the server's TIME (RedisTransportOptions.clock, for tests only).
local P = ARGV[1]
local CLOCK = nil
do
  local at = string.find(P, '@', 1, true)
  if at then
    CLOCK = tonumber(string.sub(P, at + 1))
    P = string.sub(P, 1, at - 1)
  end
end
local BAND = 4398046511104 -- 2^42: runAt range within one priority band
local MAX_ERRORS = 10
local NOTIFY_CAP = 16

local function now_ms()
  if CLOCK then return CLOCK end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function int(n)
  return string.format('%d', n)
end

-- Number-to-text conversion is slow in Redis' Lua (about 1 us): the hot paths keep
-- numbers as the text they arrive in, and count attempts with this table.
local NEXT_ATTEMPT = { ['0'] = '1', ['1'] = '2', ['2'] = '3', ['3'] = '4', ['4'] = '5', ['5'] = '6', ['6'] = '7', ['7'] = '8', ['8'] = '9', ['9'] = '10' }
local function next_attempt(a)
  return NEXT_ATTEMPT[a] or int(tonumber(a) + 1)
end

-- The ready score for a new runAt, keeping the priority band of an old score.
local function rescore(score_text, run_at)
  local band = math.floor(tonumber(score_text) / BAND)
  local r = math.floor(run_at)
  if r < 0 then r = 0 elseif r >= BAND then r = BAND - 1 end
  return int(band * BAND + r)
end

-- Batched sorted-set writes: collect (key, score, member) and write each key in
-- as few calls as possible (each redis.call costs more than the element it adds).
local function zbatch()
  return { keys = {}, args = {} }
end

local function zbatch_add(b, key, score, member)
  local a = b.args[key]
  if not a then
    a = {}
    b.args[key] = a
    b.keys[#b.keys + 1] = key
  end
  a[#a + 1] = score
  a[#a + 1] = member
end

local function zbatch_flush(b)
  for _, key in ipairs(b.keys) do
    local a = b.args[key]
    for i = 1, #a, 4000 do
      redis.call('ZADD', key, unpack(a, i, math.min(i + 3999, #a)))
    end
  end
end

-- ZREM many members of one key, in chunks.
local function zrem_many(key, ids)
  for i = 1, #ids, 4000 do
    redis.call('ZREM', key, unpack(ids, i, math.min(i + 3999, #ids)))
  end
end

-- Put a waiting message where receive finds it: ready under `score` when due, else delayed.
local function enqueue(b, id, ch, score, run_at_text, now)
  if tonumber(run_at_text) <= now then
    zbatch_add(b, P .. ':r:' .. ch, score, id)
  else
    zbatch_add(b, P .. ':d:' .. ch, run_at_text, id)
  end
end

-- Delete a message: its envelope and its state.
local function delete_message(id)
  redis.call('DEL', P .. ':m:' .. id, P .. ':h:' .. id)
end

-- Delete many messages, up to 500 (1,000 keys) per DEL: one call costs more than a key.
local function delete_messages(ids)
  for i = 1, #ids, 500 do
    local keys = {}
    for j = i, math.min(i + 499, #ids) do
      keys[#keys + 1] = P .. ':m:' .. ids[j]
      keys[#keys + 1] = P .. ':h:' .. ids[j]
    end
    redis.call('DEL', unpack(keys))
  end
end

-- Wake up to n blocked receivers of a channel; the list never exceeds NOTIFY_CAP.
local function notify(ch, n)
  local k = P .. ':n:' .. ch
  local room = NOTIFY_CAP - redis.call('LLEN', k)
  if n > room then n = room end
  for _ = 1, n do redis.call('LPUSH', k, '1') end
end

-- Append one error (a JSON object) to a history, keeping the first and the newest.
local function append_error(history, e)
  if not history or history == '' then return e end
  local s = history .. '\n' .. e
  local n = 1
  for _ in string.gmatch(s, '\n') do n = n + 1 end
  if n > MAX_ERRORS then
    local p1 = string.find(s, '\n', 1, true)
    local p2 = string.find(s, '\n', p1 + 1, true)
    s = string.sub(s, 1, p1) .. string.sub(s, p2 + 1)
  end
  return s
end

-- Free a dedupKey if this message holds it.
local function release_dedup(dk, id)
  if dk and dk ~= '' and redis.call('HGET', P .. ':dedup', dk) == id then
    redis.call('HDEL', P .. ':dedup', dk)
  end
end

-- Delete records of a finished-state set past retention; at most `cap` per call.
-- keep_count / keep_age_ms < 0 mean no limit.
local function trim(set_key, keep_count, keep_age_ms, now, cap)
  if keep_age_ms >= 0 then
    local old = redis.call('ZRANGEBYSCORE', set_key, '-inf', '(' .. int(now - keep_age_ms), 'LIMIT', 0, cap)
    if #old > 0 then
      delete_messages(old)
      zrem_many(set_key, old)
    end
    cap = cap - #old
  end
  if keep_count >= 0 and cap > 0 then
    local excess = redis.call('ZCARD', set_key) - keep_count
    if excess > cap then excess = cap end
    if excess > 0 then
      local ids = redis.call('ZRANGE', set_key, 0, excess - 1)
      delete_messages(ids)
      redis.call('ZREMRANGEBYRANK', set_key, 0, excess - 1)
    end
  end
end
