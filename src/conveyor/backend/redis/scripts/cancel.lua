-- cancel: ARGV[3] job id, [4] tenant ("" = any), [5] reason. Any non-terminal job becomes
-- canceled (a running one keeps its token so its next heartbeat answers "canceled"), and its
-- waiting dependents are settled by their dependency policy (settle_dependents), transitively.
-- Returns {"ok", job}, {"not_found"} or {"terminal", state}.
local id, tenant, reason = ARGV[3], ARGV[4], ARGV[5]
local j = load(id)
if not j or (tenant ~= '' and j.tenant ~= tenant) then
  return {'not_found'}
end
if j.state == 'succeeded' or j.state == 'failed' or j.state == 'canceled' then
  return {'terminal', j.state}
end

transition(j, 'canceled', {error = cjson.encode({type = 'Canceled', message = reason}), finished_at = fmt(NOW),
  lease_expires_at = NULL})
event(id, 'state', 'canceled', cjson.encode({reason = reason}))
settle_dependents(id, 'canceled')
return {'ok', hgetall(id)}
