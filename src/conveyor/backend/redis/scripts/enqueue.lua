-- enqueue / enqueue_many: ARGV[3] is a JSON array of requests (see codec.encode_requests),
-- ARGV[4] the lifecycle's initial-state table (states.initial_state_table): this script only
-- finds the facts (a canceled dependency, unfinished dependencies, due or not on the server
-- clock) and looks the state up, so the rule itself lives in states.py.
-- Two phases so the batch is all-or-nothing: plan every request against the stored state plus
-- what earlier requests of the batch would create (no write yet, so any refusal leaves Redis
-- untouched), then apply every plan.
local reqs = cjson.decode(ARGV[3])
-- job hash field -> name in the request JSON (codec.LIMIT_FIELDS)
local LIMIT_FIELDS = {concurrency_key = 'ckey', concurrency_limit = 'climit', rate_key = 'rkey',
  rate_limit = 'rlimit', rate_period = 'rperiod', unique_key = 'ukey'}
local INITIAL = cjson.decode(ARGV[4])
local made = {}    -- job id -> {tenant, state, step} created by this batch
local ikeys = {}   -- idempotency key name -> {job_id, digest, expires_at} written by this batch
local depth = {}   -- queue -> pending jobs this batch adds
local uniques = {} -- unique key name -> job id created by this batch
local ACTIVE = {waiting = true, scheduled = true, queued = true, running = true}

-- The pending or running job holding unique key `ukey` (B:unique:... names the last job made
-- with it; once that job has ended, or was pruned, the key is free again).
local function unique_holder(ukey)
  local id = uniques[ukey] or redis.call('GET', ukey)
  if not id then
    return nil
  end
  if made[id] then
    return ACTIVE[made[id].state] and id or nil
  end
  return ACTIVE[redis.call('HGET', jkey(id), 'state')] and id or nil
end

local function plan_one(r)
  if RETRY and redis.call('HGET', jkey(r.id), 'digest') == r.digest then
    return {existing = r.id, created = 1}
  end
  local ikey
  if r.ikey then
    ikey = B .. ':idem:' .. #r.tenant .. ':' .. r.tenant .. ':' .. r.ikey
    local found = ikeys[ikey]
    if not found then
      local v = redis.call('HMGET', ikey, 'job_id', 'digest', 'expires_at')
      if v[1] then
        found = {job_id = v[1], digest = v[2], expires_at = tonumber(v[3])}
      end
    end
    if found and found.expires_at > NOW then
      if found.digest ~= r.digest then
        return {err = {'idempotency_conflict', r.ikey, found.job_id}}
      end
      if made[found.job_id] or redis.call('EXISTS', jkey(found.job_id)) == 1 then
        return {existing = found.job_id, created = 0}
      end
    end
  end
  local ukey
  if r.ukey then
    ukey = B .. ':unique:' .. #r.tenant .. ':' .. r.tenant .. ':' .. r.ukey
    local holder = unique_holder(ukey)
    if holder then
      return {existing = holder, created = 0}
    end
  end
  if r.max_depth then
    local t = redis.call('HMGET', B .. ':totals:' .. r.queue, 'waiting', 'scheduled', 'queued')
    local d = (tonumber(t[1]) or 0) + (tonumber(t[2]) or 0) + (tonumber(t[3]) or 0) + (depth[r.queue] or 0)
    if d >= r.max_depth then
      return {err = {'queue_full', r.queue, d, r.max_depth}}
    end
  end
  -- Every dependency that may still change is linked, a failed one too (a redrive may bring it
  -- back); the outcome is settle_dependents' rule applied at once (lib.lua).
  local unfinished, ended, lost = {}, {succeeded = 0, failed = 0, canceled = 0}, nil
  for _, dep in ipairs(r.deps) do
    local tenant, state, step
    if made[dep] then
      tenant, state, step = made[dep].tenant, made[dep].state, made[dep].step
    else
      local v = redis.call('HMGET', jkey(dep), 'tenant', 'state', 'step')
      tenant, state, step = v[1], v[2], v[3]
    end
    if not tenant or tenant ~= r.tenant then
      return {err = {'dependency', dep}}
    end
    if ended[state] then
      ended[state] = ended[state] + 1
    end
    if not lost and LOST[r.policy][state] then
      lost = dependency_error(dep, step, state)
    end
    if state ~= 'canceled' and state ~= 'succeeded' then
      unfinished[#unfinished + 1] = dep
    end
  end
  local outcome = dependent_outcome(r.policy, r.quorum, #r.deps, ended)
  if outcome == 'cancel' then
    unfinished = {}
  end
  if made[r.id] or redis.call('EXISTS', jkey(r.id)) == 1 then
    return {err = {'duplicate_id', r.id}}
  end
  local run_at = r.run_at or (NOW + (r.delay or 0))
  local fact = 'due'
  if outcome == 'cancel' then
    fact = 'canceled'
  elseif outcome == 'wait' then
    fact = 'waiting'
  elseif run_at > NOW then
    fact = 'future'
  end
  local state = INITIAL[fact]
  if state == 'queued' then
    run_at = math.min(run_at, NOW)
  end
  made[r.id] = {tenant = r.tenant, state = state, step = r.step}
  if state ~= 'canceled' then
    depth[r.queue] = (depth[r.queue] or 0) + 1
  end
  if ikey then
    ikeys[ikey] = {job_id = r.id, digest = r.digest, expires_at = NOW + r.ittl}
  end
  if ukey then
    uniques[ukey] = r.id
  end
  return {ukey = ukey, r = r, state = state, run_at = run_at, unfinished = unfinished, lost = lost, ikey = ikey, ended = ended}
end

local plans = {}
for i, r in ipairs(reqs) do
  local p = plan_one(r)
  if p.err then
    return p.err
  end
  plans[i] = p
end

local function apply(p)
  local r = p.r
  local j = {id = r.id, queue = r.queue, tenant = r.tenant, state = p.state, priority = tostring(r.priority),
    run_at = fmt(p.run_at)}
  local h = {'id', r.id, 'task', r.task, 'queue', r.queue, 'tenant', r.tenant, 'args', r.args,
    'state', p.state, 'priority', j.priority, 'attempts', '0', 'max_attempts', tostring(r.max_attempts),
    'retry', r.retry, 'run_at', j.run_at, 'created_at', fmt(NOW), 'updated_at', fmt(NOW),
    'depends_on', r.deps_json, 'artifacts', '[]', 'pending_deps', tostring(#p.unfinished), 'digest', r.digest,
    'on_dependency_failure', r.policy, 'deps_total', tostring(#r.deps), 'deps_succeeded',
    tostring(p.ended.succeeded), 'deps_failed', tostring(p.ended.failed), 'deps_canceled', tostring(p.ended.canceled)}
  for _, name in ipairs({'workflow_id', 'step'}) do
    if r[name] then
      h[#h + 1] = name
      h[#h + 1] = r[name]
    end
  end
  if r.quorum then
    h[#h + 1] = 'quorum'
    h[#h + 1] = tostring(r.quorum)
  end
  if r.timeout then
    h[#h + 1] = 'timeout'
    h[#h + 1] = fmt(r.timeout)
  end
  if r.ikey then
    h[#h + 1] = 'idempotency_key'
    h[#h + 1] = r.ikey
  end
  if r.callback_url then
    h[#h + 1] = 'callback_url'
    h[#h + 1] = r.callback_url
  end
  if r.trace_context then
    h[#h + 1] = 'trace_context'
    h[#h + 1] = r.trace_context
  end
  for field, name in pairs(LIMIT_FIELDS) do
    if r[name] then
      h[#h + 1] = field
      h[#h + 1] = type(r[name]) == 'number' and fmt(r[name]) or r[name]
    end
  end
  if p.ukey then
    redis.call('SET', p.ukey, r.id)
  end
  if p.state == 'canceled' then
    j.finished_at = fmt(NOW)
    h[#h + 1] = 'finished_at'
    h[#h + 1] = j.finished_at
    h[#h + 1] = 'error'
    h[#h + 1] = cjson.encode(p.lost)
  end
  redis.call('HSET', jkey(r.id), unpack(h))
  redis.call('ZADD', B .. ':ids', 0, r.id)
  if r.workflow_id then
    redis.call('ZADD', B .. ':wf:' .. r.workflow_id, 0, r.id)
  end
  redis.call('SADD', B .. ':queues', r.queue)
  count(j, p.state, 1)
  index_add(j, p.state)
  if p.state == 'canceled' then
    outbox(r.id, 'canceled')  -- created terminal: announced like a transition (lib.lua)
  end
  for _, dep in ipairs(p.unfinished) do
    redis.call('SADD', B .. ':dependents:' .. dep, r.id)
  end
  if p.ikey then
    local expires = NOW + r.ittl
    redis.call('DEL', p.ikey)
    redis.call('HSET', p.ikey, 'job_id', r.id, 'digest', r.digest, 'expires_at', fmt(expires))
    redis.call('PEXPIRE', p.ikey, math.max(1, math.ceil(r.ittl * 1000)))
    redis.call('ZADD', B .. ':idemx', expires, p.ikey)
  end
  -- run_at spliced in as %.17g: cjson would round the number to 14 digits
  event(r.id, 'enqueued', p.state, '{"queue":' .. cjson.encode(r.queue) .. ',"task":' .. cjson.encode(r.task)
    .. ',"run_at":' .. j.run_at .. '}')
  if p.state == 'queued' then
    wake(r.queue)
  end
end

for _, p in ipairs(plans) do
  if p.r then
    apply(p)
  end
end

local out = {'ok'}
for i, p in ipairs(plans) do
  if p.r then
    out[#out + 1] = {1, hgetall(p.r.id)}
  else
    out[#out + 1] = {p.created, hgetall(p.existing)}
  end
end
return out
