-- apply.lua applies one v1 event to one student's state, atomically, and
-- returns what the rules need to evaluate the student after it.
--
-- KEYS (all share the hash tag {s:<student>}, so this runs on one shard):
--   1 off      hash  "<topic>:<partition>" -> last applied offset
--   2 live     hash  per-second buckets "b<slot>", window sums "w60" "w120"
--                    "w300", head second "h", first second "fs", last second
--                    with a face "lf", session "sess", course "course"
--   3 study    hash  "p|course|term|period", "t|course|term", "w|course|week"
--                    -> seconds of study
--   4 clicks   hash  "k|course|term|kind" -> count this term,
--                    "d|course|window|kind" -> count in a DTTW window
--   5 grades   hash  "term|course" -> "score|passed|elective|core"
--   6 consent  hash  scope -> "granted|ts|policy_version"
--   7 warn     string  the student's open warnings (JSON, owned by the rules)
--   8 profile  hash  roster facts (class, unit, minor, …), read only here
--
-- ARGV: 1 kind (score|click|grade|consent), 2 offset field, 3 offset,
--       4 event second (unix), then per kind (see each branch).
--
-- Returns {status, ...}: status 0 duplicate (already applied, nothing
-- changed), 1 applied, 2 refused (camera consent revoked), 3 erased.

local kind = ARGV[1]
local offField = ARGV[2]
local offset = tonumber(ARGV[3])
local t = tonumber(ARGV[4])

local last = redis.call('HGET', KEYS[1], offField)
if last and tonumber(last) >= offset then
  return {0}
end
redis.call('HSET', KEYS[1], offField, offset)

local NV = 17 -- n, attention, face, masked, 4 learning, learning n, emotion n, 7 emotions
local WINDOWS = {60, 120, 300}

-- One string.match and one string.format per vector: per-number gmatch
-- and format calls made up most of a score's cost inside Redis.
local FMT = '%.6g' .. string.rep(' %.6g', NV - 1)
local PAT = '^(%S+)' .. string.rep(' (%S+)', NV - 1)

local function zeros()
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
end

local function parse(s)
  if s then
    local v = {string.match(s, PAT)}
    if #v == NV then
      for i = 1, NV do v[i] = tonumber(v[i]) or 0 end
      return v
    end
  end
  return zeros()
end

local function pack(v)
  return string.format(FMT, unpack(v, 1, NV))
end

-- parseBucket reads "<second> <NV numbers>" in one match; it returns nil
-- unless the bucket holds second want (a slot is reused every H seconds).
local BPAT = '^(%-?%d+) ' .. string.sub(PAT, 2)
local function parseBucket(b, want)
  if not b then return nil end
  local v = {string.match(b, BPAT)}
  if #v ~= NV + 1 or tonumber(v[1]) ~= want then return nil end
  table.remove(v, 1)
  for i = 1, NV do v[i] = tonumber(v[i]) or 0 end
  return v
end

local function academic(status)
  return {status,
    redis.call('HGETALL', KEYS[3]),
    redis.call('HGETALL', KEYS[4]),
    redis.call('HGETALL', KEYS[5]),
    redis.call('HGETALL', KEYS[8]),
    redis.call('GET', KEYS[7]) or ''}
end

if kind == 'score' then
  -- ARGV 5 session, 6 course, 7 horizon seconds, 8 ttl seconds,
  --      9 packed vector of this second (NV numbers).
  -- Reads and writes are gathered into one HMGET and one HSET: each
  -- redis.call costs far more than the Lua around it.
  local cam = redis.call('HGET', KEYS[6], 'camera')
  if cam and string.sub(cam, 1, 1) == '0' then
    return {2}
  end
  local H = tonumber(ARGV[7])
  local slot = 'b' .. (t % H)
  local cur = redis.call('HMGET', KEYS[2], 'h', 'sess', 'w60', 'w120', 'w300', 'lf', 'fs', slot)
  local head = tonumber(cur[1] or '-1')
  local sess = cur[2]
  local fresh = false
  if head < 0 or t - head >= H or (sess and sess ~= ARGV[5]) then
    -- First event, a gap longer than the horizon, or a new session: the
    -- rolling state starts afresh.
    redis.call('DEL', KEYS[2])
    head = t - 1
    fresh = true
    cur = {}
  end
  if t <= head - H then
    redis.call('EXPIRE', KEYS[2], ARGV[8])
    return {1, 'late'}
  end
  local v = parse(ARGV[9])
  local sums = {}
  for i = 1, 3 do sums[i] = parse(cur[2 + i]) end
  local set = {}
  if t > head then
    -- Slide every window forward second by second: subtract the buckets
    -- that fall out. Amortised O(1): each second leaves each window once.
    -- Seconds head+1-w … t-w leave window w. A jump of w seconds or more
    -- empties it without reading a bucket, so a student back after a
    -- pause costs no more than one in a steady stream.
    local want, fields = {}, {}
    for i, w in ipairs(WINDOWS) do
      if t - head >= w then
        sums[i] = zeros()
      elseif not fresh then
        for old = head + 1 - w, t - w do
          if old > head - H then
            fields[#fields + 1] = 'b' .. (old % H)
            want[#want + 1] = {i, old}
          end
        end
      end
    end
    if #fields > 0 then
      local got = redis.call('HMGET', KEYS[2], unpack(fields))
      for k = 1, #fields do
        local bv = parseBucket(got[k] or nil, want[k][2])
        if bv then
          local sw = sums[want[k][1]]
          for j = 1, NV do sw[j] = sw[j] - bv[j] end
        end
      end
    end
    head = t
    set[#set + 1] = 'h'; set[#set + 1] = head
  end
  -- Add this second to its bucket and to every window that covers it.
  local bv = parseBucket(cur[8] or nil, t) or zeros()
  for j = 1, NV do bv[j] = bv[j] + v[j] end
  set[#set + 1] = slot; set[#set + 1] = t .. ' ' .. pack(bv)
  local out = {}
  for i, w in ipairs(WINDOWS) do
    if t > head - w then
      for j = 1, NV do sums[i][j] = sums[i][j] + v[j] end
    end
    -- Rounding drift must never leave a negative count.
    if sums[i][1] < 0.5 then sums[i] = parse(nil) end
    local p = pack(sums[i])
    set[#set + 1] = 'w' .. w; set[#set + 1] = p
    out[i] = p
  end
  local lf = tonumber(cur[6] or '-1')
  if v[3] >= 0.5 and t > lf then
    lf = t
    set[#set + 1] = 'lf'; set[#set + 1] = t
  end
  local fs = tonumber(cur[7] or t)
  if fresh then
    set[#set + 1] = 'fs'; set[#set + 1] = t
    set[#set + 1] = 'sess'; set[#set + 1] = ARGV[5]
  end
  set[#set + 1] = 'course'; set[#set + 1] = ARGV[6]
  redis.call('HSET', KEYS[2], unpack(set))
  local absent
  if lf >= 0 then absent = head - lf else absent = head - fs + 1 end
  redis.call('EXPIRE', KEYS[2], ARGV[8])
  return {1, out[1], out[2], out[3], absent, head, redis.call('GET', KEYS[7]) or ''}
end

if kind == 'click' then
  -- ARGV 5 course, 6 kind, 7 duration seconds, 8 term, 9 period, 10 ISO
  --      week, 11 DTTW window id.
  local c, term = ARGV[5], ARGV[8]
  local dur = tonumber(ARGV[7])
  if ARGV[6] == 'study' and dur > 0 then
    if ARGV[9] ~= '' then redis.call('HINCRBYFLOAT', KEYS[3], 'p|' .. c .. '|' .. term .. '|' .. ARGV[9], dur) end
    redis.call('HINCRBYFLOAT', KEYS[3], 't|' .. c .. '|' .. term, dur)
    redis.call('HINCRBYFLOAT', KEYS[3], 'w|' .. c .. '|' .. ARGV[10], dur)
  end
  redis.call('HINCRBY', KEYS[4], 'k|' .. c .. '|' .. term .. '|' .. ARGV[6], 1)
  redis.call('HINCRBY', KEYS[4], 'd|' .. c .. '|' .. ARGV[11] .. '|' .. ARGV[6], 1)
  return academic(1)
end

if kind == 'grade' then
  -- ARGV 5 term, 6 course, 7 "score|passed|elective|core"
  redis.call('HSET', KEYS[5], ARGV[5] .. '|' .. ARGV[6], ARGV[7])
  return academic(1)
end

if kind == 'consent' then
  -- ARGV 5 scope, 6 "1" or "0", 7 policy version
  redis.call('HSET', KEYS[6], ARGV[5], ARGV[6] .. '|' .. t .. '|' .. ARGV[7])
  if ARGV[6] == '0' and (ARGV[5] == 'camera' or ARGV[5] == 'emotion') then
    -- Right to erasure: everything derived from the camera goes.
    local sess = redis.call('HGET', KEYS[2], 'sess') or ''
    local n = redis.call('DEL', KEYS[2])
    return {3, sess, n}
  end
  return {1}
end

return redis.error_reply('apply.lua: unknown kind ' .. tostring(kind))
