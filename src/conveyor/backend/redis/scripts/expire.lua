-- expire: ARGV[3..] groups of (job id, lease token, decided state, error JSON). Applies each
-- reaper decision (states.after_expiry: "queued" or "failed") only if the job still runs under
-- that token with an expired lease (a heartbeat in between wins). Returns the ids moved.
-- A retried call answers the ids whose decision is already applied with that token, so a lost
-- reply does not hide a move from the caller.
local out = {}
for i = 3, #ARGV, 4 do
  local id, token, state, err = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local j = load(id)
  if running_with(j, token) and tonumber(j.lease_expires_at) < NOW then
    if state == 'failed' then
      transition(j, state, {error = err, lease_expires_at = NULL, finished_at = fmt(NOW)})
    else
      transition(j, state, {error = err, lease_expires_at = NULL})
    end
    event(id, 'state', state, '{"error":' .. err .. '}')
    if state == 'failed' then
      settle_dependents(id, 'failed')
    end
    out[#out + 1] = id
  elseif RETRY and j and j.lease_token == token and j.state == state then
    out[#out + 1] = id
  elseif j == nil or j.state ~= 'running' then
    redis.call('ZREM', B .. ':leases', id)
  end
end
return out
