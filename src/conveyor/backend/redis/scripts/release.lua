-- release: ARGV[3] job id, [4] lease token. Back to queued without charging the attempt
-- (graceful shutdown). 1 done, 0 fenced off.
local id, token = ARGV[3], ARGV[4]
local j = load(id)
if not running_with(j, token) then
  return 0
end
local attempts = math.max(tonumber(j.attempts) - 1, 0)
transition(j, 'queued', {attempts = tostring(attempts), lease_expires_at = NULL})
event(id, 'state', 'queued', '{"reason":"released"}')
return 1
