-- fail: ARGV[3] job id, [4] lease token, [5] error JSON, [6] the state the caller decided
-- (states.after_failure: "scheduled" or "failed"), [7] retry delay in seconds (scheduled only).
-- Returns the new state, or nil when fenced off.
local id, token, err, state, delay = ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local j = load(id)
if not running_with(j, token) then
  if RETRY and j and j.lease_token == token and j.state == state then
    return j.state
  end
  return false
end
if state == 'failed' then
  transition(j, state, {error = err, finished_at = fmt(NOW), lease_expires_at = NULL})
else
  transition(j, state, {error = err, run_at = fmt(NOW + math.max(0, delay)), lease_expires_at = NULL})
end
event(id, 'state', state, '{"error":' .. err .. '}')
if state == 'failed' then
  settle_dependents(id, 'failed')
end
return state
