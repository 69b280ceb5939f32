-- ack.lua: complete or cancel leased messages (fenced by token), then trim the finished
-- sets touched past retention. A rule that keeps nothing (count 0 or age 0) deletes each
-- message at once: no record is written only to be trimmed.
-- KEYS: none (derived from the prefix).
-- ARGV[1] prefix, ARGV[2] keepCount (-1: no limit), ARGV[3] keepAgeMs (-1: no limit), ARGV[4] trim cap;
-- then 4 per item: id, token, status ('completed' | 'cancelled'), result JSON ('' for none).
-- Returns: one integer per item: 1 done, 0 refused (not active, or not this token).
local now = now_ms()
local now_text = int(now)
local keep_count, keep_age, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local keep_none = keep_count == 0 or keep_age == 0
local gone = {}
local out = {}
local done = zbatch()
local unleased = {}
local n = (#ARGV - 4) / 4
for i = 0, n - 1 do
  local b = 5 + i * 4
  local id, tok, status, res = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local hk = P .. ':h:' .. id
  local v = redis.call('HMGET', hk, 'st', 'tok', 'ch', 'dk')
  if v[1] == 'active' and v[2] == tok then
    if keep_none then
      gone[#gone + 1] = id
    elseif res ~= '' then
      redis.call('HSET', hk, 'st', status, 'fa', now_text, 'res', res)
    else
      redis.call('HSET', hk, 'st', status, 'fa', now_text)
    end
    local ch = v[3]
    local ak = P .. ':a:' .. ch
    local ids = unleased[ak]
    if not ids then
      ids = {}
      unleased[ak] = ids
    end
    ids[#ids + 1] = id
    if not keep_none then zbatch_add(done, P .. ':s:' .. status .. ':' .. ch, now_text, id) end
    if v[4] then release_dedup(v[4], id) end
    out[i + 1] = 1
  else
    out[i + 1] = 0
  end
end
for ak, ids in pairs(unleased) do zrem_many(ak, ids) end
if #gone > 0 then delete_messages(gone) end
zbatch_flush(done)
for _, sk in ipairs(done.keys) do trim(sk, keep_count, keep_age, now, cap) end
return out
