-- apply.lua applies one v1 event to one student's state, atomically, and
-- returns what the rules need to evaluate the student after it. The live
-- rolling state of a score is computed by the caller (state.Store keeps a
-- copy of every student it writes in Go); here a score only checks that
-- copy is current and writes what it computed.
--
-- KEYS (all share the hash tag {s:<student>}, so this runs on one shard);
-- a score (kind live) passes only the five it uses, in this order: off,
-- live, consent, warn, profile (state.scoreKeys). Every other kind:
--   1 off      hash  "<topic>:<partition>" -> last applied offset (a
--                    score that wrote the live hash keeps its own there,
--                    as "o"); and
--                    "audit|<topic>:<partition>|<offset>" -> the outbox
--                    marker of a consent whose audit record is not
--                    published yet
--   2 live     hash  per-second buckets "b<slot>", the summary "s" (head,
--                    first second, last second with a face, window sums,
--                    session totals), session "sess", course "course",
--                    version "v" (binary values: state/live.go), the
--                    last applied score "o" ("<topic>:<partition>|<offset>")
--   3 study    hash  "p|course|term|period", "t|course|term" -> seconds of
--                    study (a release before the weeks key also kept the
--                    weekly totals here: a student's first study click
--                    moves them, see below)
--   4 clicks   hash  "k|course|term|kind" -> count this term (a release
--                    before the dttw key also kept the DTTW counts here:
--                    a student's first click moves them, see below)
--   5 grades   hash  "term|course" -> "score|passed|elective|core"
--   6 consent  hash  scope -> "granted|ts|policy_version|guardian"
--   7 warn     string  the student's open warnings (JSON, owned by the rules)
--   8 profile  hash  roster facts (class, unit, minor, under_14, …), read
--                    only here
--   9 dttw     hash  "d|course|window|kind" -> count in a DTTW window. Kept
--                    apart from the clicks hash, which a click or grade
--                    returns whole: a window's counts would make every
--                    reply grow with the weeks of a term
--  10 weeks    hash  "w|course|week" -> seconds of study that week; a click
--                    or grade returns only the two weeks the rules read
--
-- ARGV: 1 kind (live|click|grade|consent), 2 offset field, 3 offset,
--       4 event second (unix), 5 the offset of the previous event of the
--       same student and offset field in the caller's pipeline ('' when
--       this is the first), then per kind (see each branch).
--
-- Returns {status, ...}: status 0 duplicate (already applied, nothing
-- changed; a click or grade still returns the academic state when asked,
-- a consent its outbox marker while its audit record is unpublished),
-- 1 applied, 2 refused (camera consent revoked, or a student under 14
-- without a guardian's camera consent), 3 erased, 4 stale (live: the
-- caller's copy is not what Redis holds; nothing changed), 5 late (live:
-- older than the horizon, only the offset moved), 6 gap (the previous
-- event of the caller's pipeline, ARGV 5, is not applied; nothing changed).
--
-- Why the gap check: the calls of one pipeline can fail one by one (a
-- NOSCRIPT before another client loaded this script, a failover, an
-- error reply) while later ones succeed. A later event applied before an
-- earlier one would make the earlier one look like a redelivery and be
-- skipped for good. With the check, each student's applied events of a
-- pipeline are a prefix of its events there, and sending the pipeline
-- again in order applies exactly the rest.

-- liveO reads the offset field and offset of the last score that wrote
-- the live hash live ("o": "<offset field>|<offset>"); nil when none.
local function liveO(live)
  local o = redis.call('HGET', live, 'o')
  if not o then return nil end
  local f, n = string.match(o, '^(.*)|(%d+)$')
  return f, tonumber(n)
end

-- liveOffset is the offset of the last score from offset field f that
-- wrote the live hash live, or nil.
local function liveOffset(live, f)
  local of, n = liveO(live)
  if of ~= f then return nil end
  return n
end

-- apply1 applies one event, KEYS and ARGV as above (a call of one event
-- passes its own; a group, at the end, each event's part of its own).
local function apply1(KEYS, ARGV)
  local kind = ARGV[1]
  local offField = ARGV[2]
  local offset = tonumber(ARGV[3])
  local t = tonumber(ARGV[4])

  local lastRead, last = false, nil
  local function lastApplied()
    if not lastRead then
      local v = redis.call('HGET', KEYS[1], offField)
      last, lastRead = v and tonumber(v) or nil, true
      if kind == 'live' then
        -- A score that wrote the live hash keeps its offset there (see
        -- below); the offsets hash has the others'.
        local o = liveOffset(KEYS[2], offField)
        if o and (last == nil or o > last) then last = o end
      end
    end
    return last
  end

  local function applied()
    local l = lastApplied()
    return l ~= nil and l >= offset
  end

  if ARGV[5] ~= '' then
    local l = lastApplied()
    if l == nil or l < tonumber(ARGV[5]) then
      return {6}
    end
  end

  if kind == 'live' then
    -- ARGV 6 version "v" of the live hash the caller's copy was based on
    --      ('' none), 7 ttl seconds ('' leaves the expiry as it is: the
    --      caller refreshes it once a minute of event time, and on every
    --      write that may create the hash), 8 mode: w write, f fresh (the
    --      hash is deleted first: the rolling state starts afresh, or a
    --      format 1 hash is rewritten), l late (older than the horizon:
    --      nothing to write), b write and add vector 9 to the bucket of
    --      second 4 (a second no window covers, whose bucket the caller does
    --      not keep), 9 packed vector (mode b) or '', 10 horizon seconds,
    --      11 '1' to check the offset here, '' when the caller's copy knows
    --      it (see below), 12… field, value pairs for the live hash (a new
    --      "v" and the score's own offset "o" among them), in the formats
    --      state.Reader reads.
    -- Offsets: a score that writes the live hash writes its offset with
    -- it, as "o" = "<offset field>|<offset>", not in the offsets hash:
    -- one command less for nearly every score. Those that write nothing
    -- else (refused, late) move the offsets hash; the last applied offset
    -- is the greater of the two (lastApplied; state's loadRolling). An
    -- erasure moves "o" to the offsets hash before it deletes the live
    -- hash (consent, below).
    -- Compare-and-set: a copy made before another member (after a
    -- rebalance) or an erasure changed the hash is refused, unwritten.
    if (redis.call('HGET', KEYS[2], 'v') or '') ~= ARGV[6] then
      return {4}
    end
    -- A copy of the current version has seen every score that changed the
    -- hash, so the caller has already skipped those redelivered; the only
    -- scores it may not have seen are late or refused ones, which change
    -- nothing but the offset, so applying them again is harmless.
    if ARGV[11] == '1' and applied() then
      return {0}
    end
    -- The gate: consent and roster (state/gate.go). A version the caller
    -- wrote starts with '.', and only a score that passed the gate writes
    -- one; whatever may close the gate since deletes the hash (a
    -- revocation) or marks its version with '!' (a camera consent of a
    -- student under 14 without a guardian, the roster flag turning on). So
    -- a '.' version that still matches passed the gate with nothing changed
    -- since. Any other version (none, a mark, an older release's) checks.
    if string.byte(ARGV[6], 1) ~= 46 then
      local cam = redis.call('HGET', KEYS[3], 'camera')
      -- A student the roster marks under 14 is captured only on a guardian's
      -- camera consent (the consent record's fourth part names the guardian).
      if (cam and string.sub(cam, 1, 1) == '0') or
          (redis.call('HGET', KEYS[5], 'under_14') == '1' and
           not (cam and string.match(cam, '^1|[^|]*|[^|]*|[^|]+$'))) then
        redis.call('HSET', KEYS[1], offField, ARGV[3])
        return {2}
      end
    end
    local mode = ARGV[8]
    if mode == 'l' then
      redis.call('HSET', KEYS[1], offField, ARGV[3])
      if ARGV[7] ~= '' then redis.call('EXPIRE', KEYS[2], ARGV[7]) end
      return {5}
    end
    if mode == 'f' then
      redis.call('DEL', KEYS[2])
    end
    if #ARGV >= 12 then
      redis.call('HSET', KEYS[2], unpack(ARGV, 12))
    end
    if mode ~= 'b' then
      if ARGV[7] ~= '' then redis.call('EXPIRE', KEYS[2], ARGV[7]) end
      return {1, redis.call('GET', KEYS[4]) or ''}
    end
    -- Mode b goes on at the end.
  end

  if kind ~= 'live' then
    -- A click or grade answers with the student's academic state only when
    -- the caller asks (its last one of the student in the pipeline: the
    -- rules are evaluated once per student per batch, on the latest state).
    -- The weeks the rules read of the weekly totals (Calendar.LastWeeks):
    -- click ARGV 14 and 15, grade ARGV 10 and 11.
    local want = (kind == 'click' and ARGV[13]) or (kind == 'grade' and ARGV[9]) or ''
    local lastWeek = (kind == 'click' and ARGV[14]) or (kind == 'grade' and ARGV[10]) or ''
    local prevWeek = (kind == 'click' and ARGV[15]) or (kind == 'grade' and ARGV[11]) or ''
    local function academic(status)
      if want ~= '1' then
        return {status}
      end
      -- The study hash, and those two weeks of every course it holds a
      -- term total of (a week's total comes with a term total: a study
      -- click writes both), as if they were fields of the study hash.
      local study = redis.call('HGETALL', KEYS[3])
      if lastWeek ~= '' then
        local fields, seen = {}, {}
        for i = 1, #study, 2 do
          local c = string.match(study[i], '^t|([^|]*)|')
          if c and not seen[c] then
            seen[c] = true
            fields[#fields + 1] = 'w|' .. c .. '|' .. lastWeek
            fields[#fields + 1] = 'w|' .. c .. '|' .. prevWeek
          end
        end
        if #fields > 0 then
          local v = redis.call('HMGET', KEYS[10], unpack(fields))
          for j = 1, #fields do
            if v[j] then
              study[#study + 1] = fields[j]
              study[#study + 1] = v[j]
            end
          end
        end
      end
      return {status,
        study,
        redis.call('HGETALL', KEYS[4]),
        redis.call('HGETALL', KEYS[5]),
        redis.call('HGETALL', KEYS[8]),
        redis.call('GET', KEYS[7]) or ''}
    end

    -- moveOnce moves the fields of hash from named "<letter>|…" (b is the
    -- letter's byte) to hash to, when to does not exist yet: the first
    -- write to a hash that took over fields an earlier release kept in from.
    local function moveOnce(from, to, b)
      if redis.call('EXISTS', to) == 1 then return end
      local h = redis.call('HGETALL', from)
      for i = 1, #h, 2 do
        if string.byte(h[i], 1) == b and string.byte(h[i], 2) == 124 then
          redis.call('HSET', to, h[i], h[i + 1])
          redis.call('HDEL', from, h[i])
        end
      end
    end

    -- The outbox marker of a consent: kept from the write until the caller
    -- published the consent's audit record (state.Store.AuditsPublished).
    local marker = 'audit|' .. offField .. '|' .. ARGV[3]
    if applied() then
      -- Redelivered. A click or grade answers with the academic state, so
      -- that the caller can evaluate the rules again: the run that applied it
      -- may have crashed before publishing what they made of it. A consent
      -- answers with its outbox marker, if its audit record was never
      -- published.
      if kind == 'click' or kind == 'grade' then
        return academic(0)
      end
      if kind == 'consent' then
        local m = redis.call('HGET', KEYS[1], marker)
        if m then
          return {0, m}
        end
      end
      return {0}
    end
    redis.call('HSET', KEYS[1], offField, offset)

    if kind == 'click' then
      -- ARGV 6 course, 7 kind, 8 duration seconds, 9 term, 10 period, 11 ISO
      --      week, 12 DTTW window id, 13 '1' to return the academic state,
      --      14 and 15 the weeks of the weekly totals it returns ('' when
  --      13 asks for none).
      local c, term = ARGV[6], ARGV[9]
      local dur = tonumber(ARGV[8])
      if ARGV[7] == 'study' and dur > 0 then
        -- Whole seconds, as most platforms send them, are added by HINCRBY:
        -- HINCRBYFLOAT parses and prints a long double (its snprintf was 7 %
        -- of Redis's CPU in the pipeline bench). A total that already holds
        -- a fraction refuses HINCRBY (an error reply Redis counts in its
        -- errorstats) and takes HINCRBYFLOAT; either way the field reads as
        -- HINCRBYFLOAT alone would have written it.
        local add = ARGV[8]
        local whole = not string.find(add, '[^0-9]')
        local function study(key, field)
          if whole then
            local r = redis.pcall('HINCRBY', key, field, add)
            if type(r) ~= 'table' or not r.err then return end
          end
          redis.call('HINCRBYFLOAT', key, field, add)
        end
        -- Weekly totals an earlier release kept in the study hash.
        moveOnce(KEYS[3], KEYS[10], 119) -- 'w|'
        if ARGV[10] ~= '' then study(KEYS[3], 'p|' .. c .. '|' .. term .. '|' .. ARGV[10]) end
        study(KEYS[3], 't|' .. c .. '|' .. term)
        study(KEYS[10], 'w|' .. c .. '|' .. ARGV[11])
      end
      redis.call('HINCRBY', KEYS[4], 'k|' .. c .. '|' .. term .. '|' .. ARGV[7], 1)
      -- DTTW counts an earlier release kept in the clicks hash.
      moveOnce(KEYS[4], KEYS[9], 100) -- 'd|'
      redis.call('HINCRBY', KEYS[9], 'd|' .. c .. '|' .. ARGV[12] .. '|' .. ARGV[7], 1)
      return academic(1)
    end

    if kind == 'grade' then
      -- ARGV 6 term, 7 course, 8 "score|passed|elective|core", 9 '1' to
      --      return the academic state, 10 and 11 the weeks of the weekly
      --      totals it returns ('' when 9 asks for none).
      redis.call('HSET', KEYS[5], ARGV[6] .. '|' .. ARGV[7], ARGV[8])
      return academic(1)
    end

    if kind == 'consent' then
      -- ARGV 6 scope, 7 "1" or "0", 8 policy version, 9 guardian who
      --      answered for a minor ("" when the student did), 10 '1' to keep
      --      an outbox marker "status|erased keys|session" in the off hash
      --      until the audit record is published (the reply of a
      --      redelivery carries it, so a run that stopped in between does
      --      not lose the record)
      redis.call('HSET', KEYS[6], ARGV[6], ARGV[7] .. '|' .. t .. '|' .. ARGV[8] .. '|' .. (ARGV[9] or ''))
      local reply = {1}
      if ARGV[7] == '0' and (ARGV[6] == 'camera' or ARGV[6] == 'emotion') then
        -- Right to erasure: everything derived from the camera goes. The
        -- offset of the last score that wrote the live hash moves to the
        -- offsets hash first, so that a score applied before stays applied.
        local of, n = liveO(KEYS[2])
        if of and n > tonumber(redis.call('HGET', KEYS[1], of) or '-1') then
          redis.call('HSET', KEYS[1], of, n)
        end
        local sess = redis.call('HGET', KEYS[2], 'sess') or ''
        local n = redis.call('DEL', KEYS[2])
        reply = {3, sess, n}
      elseif ARGV[6] == 'camera' and (ARGV[9] or '') == '' and
          redis.call('HGET', KEYS[8], 'under_14') == '1' then
        -- A student under 14 answered without a guardian: the gate closes,
        -- so the next score checks it (gate.go).
        local v = redis.call('HGET', KEYS[2], 'v')
        if v then redis.call('HSET', KEYS[2], 'v', '!' .. v) end
      end
      if ARGV[10] == '1' then
        redis.call('HSET', KEYS[1], marker, reply[1] .. '|' .. (reply[3] or 0) .. '|' .. (reply[2] or ''))
      end
      return reply
    end
  end

  -- Mode b of a score: add the vector to the bucket of its second. Both
  -- are binary (state/live.go, format 2): a bucket is a tag byte 2, the
  -- second (int64) and 17 float32 sums, little-endian; the vector is the
  -- score's 17 values as float32. A bucket of another second (its slot is
  -- reused every horizon) or in another format counts as empty: a copy
  -- loaded from a format 1 hash rewrites it whole before any mode b write.
  if kind == 'live' then
    local NV = 17
    local F = string.rep('f', NV)
    local slot = 'b' .. (t % tonumber(ARGV[10]))
    local v = {struct.unpack('<' .. F, ARGV[9])}
    local b = redis.call('HGET', KEYS[2], slot)
    if b and #b == 9 + 4 * NV and string.byte(b, 1) == 2 then
      local bv = {struct.unpack('<Bi8' .. F, b)}
      if bv[2] == t then
        for j = 1, NV do v[j] = v[j] + bv[j + 2] end
      end
    end
    redis.call('HSET', KEYS[2], slot, struct.pack('<Bi8' .. F, 2, t, unpack(v, 1, NV)))
    if ARGV[7] ~= '' then redis.call('EXPIRE', KEYS[2], ARGV[7]) end
    return {1, redis.call('GET', KEYS[4]) or ''}
  end

  return redis.error_reply('apply.lua: unknown kind ' .. tostring(kind))
end

-- A group: the events of several students in one call, so that what a
-- call costs Redis before the script runs (the command, the script's
-- lookup and Lua's call) is paid once for them all (state.Store.Write:
-- only on one Redis, not over a cluster client, whose calls keep to one
-- slot). ARGV 1 '*', 2 the number of events n, then each event's number
-- of keys and of arguments (2n), then every event's arguments in order;
-- KEYS is every event's keys in order. The reply is the events' replies
-- in order, each as a call of its own would answer. The events run in
-- order, so a group does what the calls would one by one; an error (a
-- wrong type, Redis out of memory) ends the group where it happened, as
-- it would end that call, and fails the caller's whole batch either way.
if ARGV[1] ~= '*' then
  return apply1(KEYS, ARGV)
end
local n = tonumber(ARGV[2])
local out, ki, ai = {}, 0, 2 + 2 * n
for e = 1, n do
  local nk, na = tonumber(ARGV[1 + 2 * e]), tonumber(ARGV[2 + 2 * e])
  -- unpack into a table constructor sizes each table once.
  out[e] = apply1({unpack(KEYS, ki + 1, ki + nk)}, {unpack(ARGV, ai + 1, ai + na)})
  ki, ai = ki + nk, ai + na
end
return out
