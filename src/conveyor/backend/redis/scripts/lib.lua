-- Shared helpers, prepended to every transition script (Redis scripts cannot import each other).
--
-- KEYS[1] is the namespace base "<prefix>:{<prefix>}". Every key a script touches starts with it,
-- so all keys of a namespace hash to one Redis Cluster slot and a script never crosses slots.
-- ARGV[1] is the clock offset (test hook). ARGV[2] is "0" on a first send or "1" when the caller
-- re-sends a call whose outcome it did not see (connection lost after sending), followed by the
-- call id: random per logical call and the same on the retry, "" for scripts that are redone
-- freely (read-only or idempotent; scripts.py SCRIPTS declares which script is which).
-- A state-changing script (REPLY in scripts.py) runs as `replied(main)`: its reply is stored
-- under B:reply:<call id> for REPLY_TTL_MS in the same run, and a second run with the same call
-- id (the retry, or a first send Redis ran late) returns that reply without redoing anything.
-- So a retry never double-applies a transition, duplicates an event or changes the answer.
-- Times are the Redis server's TIME plus the offset: worker clocks never matter.
local B = KEYS[1]
local OFFSET = tonumber(ARGV[1])
local RETRY = string.sub(ARGV[2], 1, 1) == '1'
local CALL_ID = string.sub(ARGV[2], 2)
local REPLY_TTL_MS = 60000
local T = redis.call('TIME')
local NOW = tonumber(T[1]) + tonumber(T[2]) / 1000000 + OFFSET
local NULL = false
local FIELDS = {'id', 'queue', 'tenant', 'state', 'priority', 'run_at', 'attempts', 'max_attempts',
  'lease_token', 'lease_expires_at', 'finished_at', 'pending_deps', 'task'}

local function fmt(x)
  return string.format('%.17g', x)
end

local function jkey(id)
  return B .. ':job:' .. id
end

-- The few fields a transition needs (never the payload), or nil when the job does not exist.
local function load(id)
  local v = redis.call('HMGET', jkey(id), unpack(FIELDS))
  if not v[1] then
    return nil
  end
  local j = {}
  for i, name in ipairs(FIELDS) do
    j[name] = v[i]
  end
  return j
end

-- Job hashes a script puts in its reply, by table: `replied` stores them as their id only.
local JOB_OF = {}

local function hgetall(id)
  local flat = redis.call('HGETALL', jkey(id))
  JOB_OF[flat] = id
  return flat
end

-- Member of the ready set: equal scores (-priority) sort by member bytes, so run_at (fixed
-- width, microseconds) then id gives exactly "priority DESC, run_at ASC, id ASC".
local function ready_member(j)
  return string.format('%020.6f', tonumber(j.run_at)) .. ':' .. j.id
end

local function age_key(j)
  return B .. ':age:' .. #j.tenant .. ':' .. j.tenant .. ':' .. j.queue
end

local function count(j, state, delta)
  redis.call('HINCRBY', B .. ':counts:' .. j.queue, state .. ':' .. j.tenant, delta)
  redis.call('HINCRBY', B .. ':totals:' .. j.queue, state, delta)
end

local function wake(queue)
  local key = B .. ':wake:' .. queue
  redis.call('LPUSH', key, '1')
  redis.call('LTRIM', key, 0, 63)
end

local function index_remove(j, state)
  local q = j.queue
  if state == 'queued' then
    redis.call('ZREM', B .. ':ready:' .. q, ready_member(j))
    redis.call('ZREM', age_key(j), j.id)
  elseif state == 'scheduled' then
    redis.call('ZREM', B .. ':sched:' .. q, j.id)
  elseif state == 'running' then
    redis.call('ZREM', B .. ':leases', j.id)
  elseif state == 'succeeded' or state == 'canceled' then
    redis.call('ZREM', B .. ':done:' .. q, j.id)
  elseif state == 'failed' then
    redis.call('ZREM', B .. ':done:' .. q, j.id)
    redis.call('ZREM', B .. ':failed:' .. q, j.id)
  end
end

local function index_add(j, state)
  local q = j.queue
  if state == 'queued' then
    redis.call('ZADD', B .. ':ready:' .. q, -tonumber(j.priority), ready_member(j))
    redis.call('ZADD', age_key(j), j.run_at, j.id)
  elseif state == 'scheduled' then
    local sched = B .. ':sched:' .. q
    redis.call('ZADD', sched, j.run_at, j.id)
    -- the new earliest due job of its queue: a worker sleeping until the old head must recompute
    if redis.call('ZRANGE', sched, 0, 0)[1] == j.id then
      wake(q)
    end
  elseif state == 'running' then
    redis.call('ZADD', B .. ':leases', j.lease_expires_at, j.id)
  elseif state == 'succeeded' or state == 'canceled' then
    redis.call('ZADD', B .. ':done:' .. q, j.finished_at, j.id)
  elseif state == 'failed' then
    redis.call('ZADD', B .. ':done:' .. q, j.finished_at, j.id)
    redis.call('ZADD', B .. ':failed:' .. q, j.finished_at, j.id)
  end
end

local TERMINAL = {succeeded = true, failed = true, canceled = true}

-- Record "job `id` reached terminal state `state`" in the notification outbox, in the same
-- script as the change (docs/decisions/0002-webhooks.md): B:outbox:e holds the entry, B:outbox
-- orders the entries by when they may be taken (now; later, the end of a consumer's lease),
-- B:ox:<id> lists the job's unacked entries so pruning the job removes them.
local function outbox(id, state)
  local seq = redis.call('INCR', B .. ':oseq')
  local entry = '{"job_id":' .. cjson.encode(id) .. ',"state":"' .. state .. '","at":' .. fmt(NOW) .. '}'
  redis.call('HSET', B .. ':outbox:e', seq, entry)
  redis.call('ZADD', B .. ':outbox', NOW, seq)
  redis.call('SADD', B .. ':ox:' .. id, seq)
end

-- Move a job to state `new`, setting `sets` (string values; NULL deletes the field), keeping
-- every index and counter in step, and recording a terminal change in the outbox. The only
-- place a job's state changes. `sets` may change the queue (an overrun move): the job leaves
-- the old queue's indexes and counters before the sets apply and joins the new one's after.
local function transition(j, new, sets)
  local old = j.state
  index_remove(j, old)
  count(j, old, -1)
  local hset = {'state', new, 'updated_at', fmt(NOW)}
  local hdel = {}
  for k, v in pairs(sets) do
    j[k] = v
    if v == NULL then
      hdel[#hdel + 1] = k
    else
      hset[#hset + 1] = k
      hset[#hset + 1] = v
    end
  end
  j.state = new
  redis.call('HSET', jkey(j.id), unpack(hset))
  if #hdel > 0 then
    redis.call('HDEL', jkey(j.id), unpack(hdel))
  end
  count(j, new, 1)
  index_add(j, new)
  if new == 'queued' then
    wake(j.queue)
  end
  if TERMINAL[new] and old ~= new then
    outbox(j.id, new)
  end
end

-- Append to the job's history; `data` is a JSON object text. seq is global and monotonic.
local function event(id, type_, state, data)
  local seq = redis.call('INCR', B .. ':seq')
  local entry = '{"seq":' .. seq .. ',"at":' .. fmt(NOW) .. ',"type":"' .. type_ .. '","state":"' .. state
    .. '","data":' .. data .. '}'
  redis.call('ZADD', B .. ':ev:' .. id, seq, entry)
end

local function is_paused(queue)
  return redis.call('HGET', B .. ':paused', queue) == '1'
end

-- Scheduled jobs of `queue` whose run_at has come become queued (at most `limit`).
local function promote_queue(queue, limit)
  local ids = redis.call('ZRANGEBYSCORE', B .. ':sched:' .. queue, '-inf', fmt(NOW), 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    local j = load(id)
    transition(j, 'queued', {})
    event(id, 'state', 'queued', '{}')
  end
  return #ids
end

-- DEP_RULES (put in front of this library by scripts.py) is states.dependency_rules_table():
-- per policy, the dependency states that count as done and as lost. As sets:
local DONE, LOST = {}, {}
for policy, rule in pairs(DEP_RULES.rules) do
  DONE[policy], LOST[policy] = {}, {}
  for _, s in ipairs(rule.done) do
    DONE[policy][s] = true
  end
  for _, s in ipairs(rule.lost) do
    LOST[policy][s] = true
  end
end

-- states.dependent_outcome_counts: 'release' once enough dependencies are done, 'cancel' once
-- the quorum (all by default) can no longer be reached, else 'wait'. `ended` maps a terminal
-- state to how many of the `total` dependencies are in it now.
local function dependent_outcome(policy, quorum, total, ended)
  local done, lost = 0, 0
  for s, n in pairs(ended) do
    if DONE[policy][s] then
      done = done + n
    elseif LOST[policy][s] then
      lost = lost + n
    end
  end
  local need = total
  if quorum and quorum < need then
    need = quorum
  end
  if done >= need then
    return 'release'
  end
  if total - lost < need then
    return 'cancel'
  end
  return 'wait'
end

-- states.dependency_failed_error
local function dependency_error(dep, step, state)
  local name = 'dependency ' .. dep
  if step and step ~= '' then
    name = name .. ' (' .. step .. ')'
  end
  local verb = 'failed'
  if state == 'canceled' then
    verb = 'was canceled'
  end
  return {type = 'DependencyFailed', message = name .. ' ' .. verb, dependency = dep}
end

-- Job `id` just ended in `state` (this script): count it on each waiting dependent (the
-- deps_<state> fields), then release, cancel or keep each as dependent_outcome decides, depth
-- first in id order, cascading through the dependents canceled here. A failed job keeps its
-- dependents set: a redrive may still end it otherwise (redrive.lua uncounts the failure).
local function settle_dependents(id, state)
  local key = B .. ':dependents:' .. id
  local dependents = redis.call('SMEMBERS', key)
  table.sort(dependents)
  for _, dep in ipairs(dependents) do
    local d = load(dep)
    if d and d.state == 'waiting' then
      redis.call('HINCRBY', jkey(dep), 'deps_' .. state, 1)
      local v = redis.call('HMGET', jkey(dep), 'on_dependency_failure', 'quorum', 'deps_total', 'deps_succeeded',
        'deps_failed', 'deps_canceled')
      local ended = {succeeded = tonumber(v[4] or '0'), failed = tonumber(v[5] or '0'), canceled = tonumber(v[6] or '0')}
      local outcome = dependent_outcome(v[1] or 'cancel', tonumber(v[2] or ''), tonumber(v[3] or '0'), ended)
      if outcome == 'release' then
        local run_at = math.max(tonumber(d.run_at), NOW)
        local new = 'queued'
        if run_at > NOW then
          new = 'scheduled'
        end
        transition(d, new, {run_at = fmt(run_at)})
        event(dep, 'state', new, '{}')
      elseif outcome == 'cancel' then
        local err = dependency_error(id, redis.call('HGET', jkey(id), 'step'), state)
        transition(d, 'canceled', {error = cjson.encode(err), finished_at = fmt(NOW), lease_expires_at = NULL})
        event(dep, 'state', 'canceled', cjson.encode({reason = err.message, error = err}))
        settle_dependents(dep, 'canceled')
      end
    end
  end
  if state ~= 'failed' then
    redis.call('DEL', key)
  end
end

local function running_with(j, token)
  return j ~= nil and j.state == 'running' and j.lease_token == token
end

-- Stored replies are MessagePack (it gives back exactly what the body returned, false included),
-- with every job hash made by hgetall() replaced by {JOB_MARK, id} and read again on replay, so
-- a claim or enqueue reply costs a few bytes per job, not a copy of its payload. (A replayed
-- job hash is the job as it is at retry time: it can only have moved on since.)
local JOB_MARK = '\0job'

local function compact(x)
  if type(x) ~= 'table' then
    return x
  end
  if JOB_OF[x] then
    return {JOB_MARK, JOB_OF[x]}
  end
  local out = {}
  for i, v in ipairs(x) do
    out[i] = compact(v)
  end
  return out
end

local function expand(x)
  if type(x) ~= 'table' then
    return x
  end
  if x[1] == JOB_MARK then
    return redis.call('HGETALL', jkey(x[2]))
  end
  local out = {}
  for i, v in ipairs(x) do
    out[i] = expand(v)
  end
  return out
end

-- Run a state-changing script body at most once per call id (see the header).
local function replied(main)
  if CALL_ID == '' then
    return main()
  end
  local key = B .. ':reply:' .. CALL_ID
  local prev = redis.call('GET', key)
  if prev then
    return expand(cmsgpack.unpack(prev))
  end
  local reply = main()
  -- An empty list (a claim that found nothing, a reap with nothing expired) changed nothing:
  -- redoing it is harmless, so idle polling stores nothing.
  if type(reply) ~= 'table' or #reply > 0 then
    redis.call('SET', key, cmsgpack.pack(compact(reply)), 'PX', REPLY_TTL_MS)
  end
  return reply
end
