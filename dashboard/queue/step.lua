-- Applies one help-loop step to its warning's record.
-- KEYS[1] record hash, KEYS[2] steps hash
-- ARGV: 1 event id, 2 event JSON, 3 ref, 4 action, 5 by, 6 owner, 7 ts ms,
--       8 result, 9 student, 10 year
-- Returns the notice serial for a notice, "1" for another applied step,
-- or 0 if this step was applied before.
local rec = KEYS[1]
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then
  return 0
end
local ref = ARGV[3]
local function reindex(dim, new)
  local old = redis.call('HGET', rec, dim)
  if old == new then return end
  if old and old ~= '' then redis.call('SREM', '{q}:i:' .. dim .. ':' .. old, ref) end
  if new ~= '' then redis.call('SADD', '{q}:i:' .. dim .. ':' .. new, ref) end
  redis.call('HSET', rec, dim, new)
end
if redis.call('HEXISTS', rec, 'ref') == 0 then
  -- The step arrived before its warning (another topic): keep it; the
  -- warning fills in the rest when it comes.
  redis.call('HSET', rec, 'ref', ref)
  reindex('student', ARGV[9])
end
local action = ARGV[4]
local loop = redis.call('HGET', rec, 'loop') or 'open'
local out = '1'
if action == 'assign' then
  reindex('owner', ARGV[6])
  if loop == 'open' then reindex('loop', 'assigned') end
elseif action == 'confirm' then
  redis.call('HSET', rec, 'confirmed', '1', 'confirmed_by', ARGV[5], 'confirmed_at', ARGV[7])
elseif action == 'notice' then
  local serial = redis.call('HGET', rec, 'serial')
  if not serial then
    local n = redis.call('INCR', '{q}:serial:' .. ARGV[10])
    serial = ARGV[10] .. '-' .. string.format('%06d', n)
    redis.call('HSET', rec, 'serial', serial, 'noticed_at', ARGV[7])
  end
  out = serial
  if loop ~= 'closed' then reindex('loop', 'in_progress') end
elseif action == 'close' then
  reindex('loop', 'closed')
  redis.call('HSET', rec, 'result', ARGV[8], 'closed_at', ARGV[7])
elseif action == 'escalate' then
  reindex('loop', 'escalated')
else
  if loop == 'open' or loop == 'assigned' then reindex('loop', 'in_progress') end
end
redis.call('HSET', rec, 'updated_at', ARGV[7])
return out
