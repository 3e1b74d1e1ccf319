-- Applies one warning transition to its record and indexes.
-- KEYS[1] record hash, KEYS[2] {q}:all, KEYS[3] {q}:roster
-- ARGV: 1 event id, 2 event JSON, 3 ref, 4 student, 5 session, 6 course,
--       7 category, 8 level, 9 rule, 10 reason, 11 state, 12 ts ms, 13 term,
--       14 level rank
-- Returns 1 if applied, 0 if the record already has this or a later event.
local rec = KEYS[1]
local last = redis.call('HGET', rec, 'last_event')
if last and last >= ARGV[1] then
  return 0
end
local unit = ''
if ARGV[4] ~= '' then
  local r = redis.call('HGET', KEYS[3], ARGV[4])
  if r then
    local ok, t = pcall(cjson.decode, r)
    if ok and type(t) == 'table' and type(t.unit) == 'string' then unit = t.unit end
  end
end
local function reindex(dim, new)
  local old = redis.call('HGET', rec, dim)
  if old == new then return end
  if old and old ~= '' then redis.call('SREM', '{q}:i:' .. dim .. ':' .. old, ARGV[3]) end
  if new ~= '' then redis.call('SADD', '{q}:i:' .. dim .. ':' .. new, ARGV[3]) end
  redis.call('HSET', rec, dim, new)
end
reindex('category', ARGV[7])
reindex('level', ARGV[8])
reindex('state', ARGV[11])
reindex('course', ARGV[6])
reindex('student', ARGV[4])
if redis.call('HEXISTS', rec, 'term') == 0 then reindex('term', ARGV[13]) end
if unit ~= '' or redis.call('HEXISTS', rec, 'unit') == 0 then reindex('unit', unit) end
if redis.call('HEXISTS', rec, 'loop') == 0 then reindex('loop', 'open') end
if redis.call('HEXISTS', rec, 'raised_at') == 0 then
  redis.call('HSET', rec, 'raised_at', ARGV[12], 'first_level', ARGV[8])
end
local maxr = tonumber(redis.call('HGET', rec, 'max_rank') or '0')
if tonumber(ARGV[14]) > maxr then
  redis.call('HSET', rec, 'max_rank', ARGV[14], 'max_level', ARGV[8])
end
redis.call('HSET', rec, 'ref', ARGV[3], 'session', ARGV[5], 'rule', ARGV[9], 'reason', ARGV[10],
  'warning', ARGV[2], 'last_event', ARGV[1], 'updated_at', ARGV[12])
if ARGV[11] == 'cleared' then
  redis.call('HSET', rec, 'cleared_at', ARGV[12])
end
redis.call('ZADD', KEYS[2], 'NX', redis.call('HGET', rec, 'raised_at'), ARGV[3])
return 1
