-- reap: every running job whose lease expired goes back to queued, or to failed when its
-- attempts are used up. Returns the ids moved.
local ids = redis.call('ZRANGEBYSCORE', B .. ':leases', '-inf', '(' .. fmt(NOW), 'LIMIT', 0, 10000)
local out = {}
for _, id in ipairs(ids) do
  local j = load(id)
  if j and j.state == 'running' then
    local attempts = tonumber(j.attempts)
    local err = cjson.encode({type = 'LeaseExpired',
      message = 'worker lost the lease during attempt ' .. attempts .. ' (crashed or stalled)'})
    local state = 'queued'
    if attempts >= tonumber(j.max_attempts) then
      state = 'failed'
      transition(j, state, {error = err, lease_expires_at = NULL, finished_at = fmt(NOW)})
    else
      transition(j, state, {error = err, lease_expires_at = NULL})
    end
    event(id, 'state', state, '{"error":' .. err .. '}')
    out[#out + 1] = id
  else
    redis.call('ZREM', B .. ':leases', id)
  end
end
return out
