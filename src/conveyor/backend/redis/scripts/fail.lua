-- fail: ARGV[3] job id, [4] lease token, [5] error JSON, [6] retry delay ("" = do not retry).
-- Returns the new state (scheduled or failed), or nil when fenced off.
local id, token, err, delay = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local j = load(id)
if not running_with(j, token) then
  if RETRY and j and j.lease_token == token and (j.state == 'scheduled' or j.state == 'failed') then
    return j.state
  end
  return false
end
local state
if delay == '' or tonumber(j.attempts) >= tonumber(j.max_attempts) then
  state = 'failed'
  transition(j, state, {error = err, finished_at = fmt(NOW), lease_expires_at = NULL})
else
  state = 'scheduled'
  transition(j, state, {error = err, run_at = fmt(NOW + math.max(0, tonumber(delay))), lease_expires_at = NULL})
end
event(id, 'state', state, '{"error":' .. err .. '}')
return state
