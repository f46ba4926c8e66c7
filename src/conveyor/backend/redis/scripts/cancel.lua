-- cancel: ARGV[3] job id, [4] tenant ("" = any), [5] reason. Any non-terminal job becomes
-- canceled (a running one keeps its token so its next heartbeat answers "canceled"), and its
-- waiting dependents are canceled with it, transitively.
-- Returns {"ok", job}, {"not_found"} or {"terminal", state}.
local id, tenant, reason = ARGV[3], ARGV[4], ARGV[5]
local j = load(id)
if not j or (tenant ~= '' and j.tenant ~= tenant) then
  return {'not_found'}
end
if j.state == 'succeeded' or j.state == 'failed' or j.state == 'canceled' then
  return {'terminal', j.state}
end

-- Depth first, dependents in id order, state checked when visited (not when found): in a
-- diamond (C waits on A and B, B waits on A) C is canceled once, like the reference engine.
local function cancel_one(c, why)
  transition(c, 'canceled', {error = cjson.encode({type = 'Canceled', message = why}), finished_at = fmt(NOW),
    lease_expires_at = NULL})
  event(c.id, 'state', 'canceled', cjson.encode({reason = why}))
  local dependents = redis.call('SMEMBERS', B .. ':dependents:' .. c.id)
  table.sort(dependents)
  for _, dep in ipairs(dependents) do
    local d = load(dep)
    if d and d.state == 'waiting' then
      cancel_one(d, 'dependency ' .. c.id .. ' was canceled')
    end
  end
end

cancel_one(j, reason)
return {'ok', hgetall(id)}
