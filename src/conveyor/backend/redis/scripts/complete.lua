-- complete: ARGV[3] job id, [4] lease token, [5] result JSON. Finishes the job and releases
-- its waiting dependents (settle_dependents). 1 done, 0 fenced off.
local id, token, result = ARGV[3], ARGV[4], ARGV[5]
local j = load(id)
if not running_with(j, token) then
  return 0
end
transition(j, 'succeeded', {result = result, finished_at = fmt(NOW), lease_expires_at = NULL, progress = '1.0', error = NULL})
event(id, 'state', 'succeeded', '{}')
settle_dependents(id, 'succeeded')
return 1
