-- claim: ARGV[3] worker id, [4] lease seconds, [5] limit, [6] number of queues, then the
-- queue names, then `limit` fresh lease tokens (made by the caller: Lua has no good randomness).
-- Promotes due scheduled jobs of these queues, then takes the best `limit` ready jobs across
-- the non-paused queues in priority DESC, run_at ASC, id ASC order, skipping jobs held back by
-- a limit (conveyor.limits; docs/operations-redis.md "Limits"):
--
-- * B:crun:<key> is the set of jobs claimed with concurrency key <key>; the ones no longer
--   running are dropped when it is counted, so a job that ends (or is reaped) frees its slot
--   without the other scripts knowing about limits.
-- * B:rate:<key> holds the start times of rate key <key> (score = start), trimmed to the period.
-- * A ready job whose key is full is "parked": moved from its queue's ready set to
--   B:park:c:<key> / B:park:r:<key> (same score and member), so it never blocks the jobs
--   behind it. B:parked lists the parked keys, B:parkinfo their limit ("N" or "N:period").
--   Every claim first returns to the ready sets as many parked jobs as their key has room for.
local worker, lease, limit, nq = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local queues, tokens = {}, {}
for i = 1, nq do
  queues[i] = ARGV[6 + i]
end
for i = 1, limit do
  tokens[i] = ARGV[6 + nq + i]
end

-- Jobs of concurrency key `key` running now (stale members dropped on the way).
local running_cache = {}
local function running(key)
  if running_cache[key] then
    return running_cache[key]
  end
  local set = B .. ':crun:' .. key
  local n = 0
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    if redis.call('HGET', jkey(id), 'state') == 'running' then
      n = n + 1
    else
      redis.call('SREM', set, id)
    end
  end
  running_cache[key] = n
  return n
end

-- Starts of rate key `key` in the window (NOW - period, NOW]; older ones are forgotten.
local function started(key, period)
  local zkey = B .. ':rate:' .. key
  redis.call('ZREMRANGEBYSCORE', zkey, '-inf', fmt(NOW - period))
  return redis.call('ZCARD', zkey)
end

local LIMIT_FIELDS = {'concurrency_key', 'concurrency_limit', 'rate_key', 'rate_limit', 'rate_period'}

local function limits_of(id)
  local v = redis.call('HMGET', jkey(id), unpack(LIMIT_FIELDS))
  return {ckey = v[1], climit = tonumber(v[2]), rkey = v[3], rlimit = tonumber(v[4]), rperiod = tonumber(v[5])}
end

-- The park name ("c:<key>" / "r:<key>") of the limit that holds job `l` back now, or nil;
-- `extra` counts the candidates already chosen per name ({} when there are none).
local function held_by(l, extra)
  if l.ckey and running(l.ckey) + (extra['c:' .. l.ckey] or 0) >= l.climit then
    return 'c:' .. l.ckey, tostring(l.climit)
  end
  if l.rkey and started(l.rkey, l.rperiod) + (extra['r:' .. l.rkey] or 0) >= l.rlimit then
    return 'r:' .. l.rkey, l.rlimit .. ':' .. fmt(l.rperiod)
  end
  return nil
end

-- How many more jobs the parked key `name` lets start now.
local function room(name)
  local info = redis.call('HGET', B .. ':parkinfo', name) or '1'
  local kind, key = string.sub(name, 1, 1), string.sub(name, 3)
  if kind == 'c' then
    return tonumber(info) - running(key)
  end
  local n, period = string.match(info, '^(%d+):(.+)$')
  return tonumber(n) - started(key, tonumber(period))
end

local function park(name, info, ready, member, score)
  redis.call('ZREM', ready, member)
  redis.call('ZADD', B .. ':park:' .. name, score, member)
  redis.call('SADD', B .. ':parked', name)
  redis.call('HSET', B .. ':parkinfo', name, info)
end

local function unpark_all()
  for _, name in ipairs(redis.call('SMEMBERS', B .. ':parked')) do
    local zkey = B .. ':park:' .. name
    local n = room(name)
    if n > 0 then
      for _, member in ipairs(redis.call('ZRANGE', zkey, 0, n - 1)) do
        redis.call('ZREM', zkey, member)
        local j = load(string.sub(member, 22))
        if j and j.state == 'queued' then -- else it was canceled meanwhile: forget it
          redis.call('ZADD', B .. ':ready:' .. j.queue, -tonumber(j.priority), ready_member(j))
          wake(j.queue)
        end
      end
    end
    if redis.call('EXISTS', zkey) == 0 then
      redis.call('SREM', B .. ':parked', name)
      redis.call('HDEL', B .. ':parkinfo', name)
    end
  end
end

unpark_all()

-- Up to `limit` claimable jobs of queue `q`, best first; parks the held-back ones met on the way
-- (counting the candidates chosen so far, of every queue, as if they ran already).
local chosen = {}
local function choose(l)
  if l.ckey then
    chosen['c:' .. l.ckey] = (chosen['c:' .. l.ckey] or 0) + 1
  end
  if l.rkey then
    chosen['r:' .. l.rkey] = (chosen['r:' .. l.rkey] or 0) + 1
  end
end

local function candidates_of(q)
  local ready = B .. ':ready:' .. q
  local found = {}
  while #found < limit do
    local top = redis.call('ZRANGE', ready, #found, limit - 1, 'WITHSCORES')
    if #top == 0 then
      break
    end
    for i = 1, #top, 2 do
      local member, score = top[i], tonumber(top[i + 1])
      local l = limits_of(string.sub(member, 22))
      local name, info = held_by(l, chosen)
      if name then
        park(name, info, ready, member, score)
      else
        choose(l)
        found[#found + 1] = {member = member, score = score, limits = l}
      end
    end
  end
  return found
end

local candidates = {}
for _, q in ipairs(queues) do
  promote_queue(q, math.max(limit, 1000))
  if not is_paused(q) then
    for _, c in ipairs(candidates_of(q)) do
      candidates[#candidates + 1] = c
    end
  end
end
if nq > 1 then
  table.sort(candidates, function(a, b)
    if a.score ~= b.score then
      return a.score < b.score
    end
    return a.member < b.member
  end)
end

local out = {}
local expires = fmt(NOW + lease)
for _, c in ipairs(candidates) do
  if #out >= limit then
    break
  end
  local l = c.limits
  -- this batch's own takes count too (held_by reads the counts updated below); a job that no
  -- longer fits stays ready for the next claim
  if not held_by(l, {}) then
    local id = string.sub(c.member, 22)
    local j = load(id)
    local attempt = tonumber(j.attempts) + 1
    transition(j, 'running', {attempts = tostring(attempt), lease_token = tokens[#out + 1], lease_expires_at = expires,
      worker_id = worker, started_at = fmt(NOW)})
    event(id, 'state', 'running', cjson.encode({attempt = attempt, worker = worker}))
    if l.ckey then
      redis.call('SADD', B .. ':crun:' .. l.ckey, id)
      running_cache[l.ckey] = running(l.ckey) + 1
    end
    if l.rkey then
      redis.call('ZADD', B .. ':rate:' .. l.rkey, NOW, id .. ':' .. fmt(NOW))
    end
    out[#out + 1] = hgetall(id)
  end
end
return out
