-- prune: ARGV[3] older_than seconds, ARGV[4] JSON object of per-queue seconds replacing it for
-- those queues. Deletes terminal jobs finished before now - older_than (with their events,
-- effects, dependents and outbox entries) and expired idempotency keys. Returns jobs deleted.
local older_than = tonumber(ARGV[3])
local per_queue = cjson.decode(ARGV[4] or '{}')
local budget = 5000
local deleted = 0
for _, q in ipairs(redis.call('SMEMBERS', B .. ':queues')) do
  if budget <= 0 then
    break
  end
  local cutoff = NOW - (tonumber(per_queue[q]) or older_than)
  local ids = redis.call('ZRANGEBYSCORE', B .. ':done:' .. q, '-inf', '(' .. fmt(cutoff), 'LIMIT', 0, budget)
  for _, id in ipairs(ids) do
    local j = load(id)
    if j then
      count(j, j.state, -1)
      index_remove(j, j.state)
      for _, seq in ipairs(redis.call('SMEMBERS', B .. ':ox:' .. id)) do
        redis.call('HDEL', B .. ':outbox:e', seq)
        redis.call('ZREM', B .. ':outbox', seq)
      end
      local wf = redis.call('HGET', jkey(id), 'workflow_id')
      if wf then
        redis.call('ZREM', B .. ':wf:' .. wf, id)
      end
      local u = redis.call('HMGET', jkey(id), 'unique_key', 'tenant')
      if u[1] then -- the unique key names this job no more (limits: enqueue.lua)
        local ukey = B .. ':unique:' .. #u[2] .. ':' .. u[2] .. ':' .. u[1]
        if redis.call('GET', ukey) == id then
          redis.call('DEL', ukey)
        end
      end
      redis.call('DEL', jkey(id), B .. ':ev:' .. id, B .. ':fx:' .. id, B .. ':dependents:' .. id, B .. ':ox:' .. id)
      redis.call('ZREM', B .. ':ids', id)
      deleted = deleted + 1
    else
      redis.call('ZREM', B .. ':done:' .. q, id)
      redis.call('ZREM', B .. ':failed:' .. q, id)
    end
  end
  budget = budget - #ids
end
for _, key in ipairs(redis.call('ZRANGEBYSCORE', B .. ':idemx', '-inf', '(' .. fmt(NOW), 'LIMIT', 0, 10000)) do
  redis.call('DEL', key)
  redis.call('ZREM', B .. ':idemx', key)
end
return deleted
