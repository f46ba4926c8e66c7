-- redrive: failed jobs back to queued with attempts reset (the last error stays visible).
-- ARGV[3] tenant ("" = any), [4] mode: "ids" then the job ids, or "filter" then queue and task
-- ("" = any). Returns how many jobs moved.
local tenant, mode = ARGV[3], ARGV[4]
local ids = {}
if mode == 'ids' then
  for i = 5, #ARGV do
    ids[#ids + 1] = ARGV[i]
  end
else
  local queue, task = ARGV[5], ARGV[6]
  local queues = {queue}
  if queue == '' then
    queues = redis.call('SMEMBERS', B .. ':queues')
  end
  for _, q in ipairs(queues) do
    for _, id in ipairs(redis.call('ZRANGE', B .. ':failed:' .. q, 0, -1)) do
      if task == '' or redis.call('HGET', jkey(id), 'task') == task then
        ids[#ids + 1] = id
      end
    end
  end
end
local moved = 0
for _, id in ipairs(ids) do
  local j = load(id)
  if j and j.state == 'failed' and (tenant == '' or j.tenant == tenant) then
    transition(j, 'queued', {attempts = '0', run_at = fmt(NOW), finished_at = NULL, lease_expires_at = NULL,
      lease_token = NULL, worker_id = NULL})
    event(id, 'state', 'queued', '{"reason":"redriven"}')
    -- no longer failed for its waiting dependents (settle_dependents counted it)
    for _, dep in ipairs(redis.call('SMEMBERS', B .. ':dependents:' .. id)) do
      if redis.call('HGET', jkey(dep), 'state') == 'waiting' then
        redis.call('HINCRBY', jkey(dep), 'deps_failed', -1)
      end
    end
    moved = moved + 1
  end
end
return moved
