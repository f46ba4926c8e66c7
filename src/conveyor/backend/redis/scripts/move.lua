-- move: ARGV[3] job id, [4] lease token, [5] target queue. Overrun move:
-- back to queued on the target queue, attempt given back; id, run_at, progress and checkpoint
-- stay. 1 done, 0 fenced off.
local id, token, queue = ARGV[3], ARGV[4], ARGV[5]
local j = load(id)
if not running_with(j, token) then
  return 0
end
local data = '{"reason":"moved","from":' .. cjson.encode(j.queue) .. ',"to":' .. cjson.encode(queue) .. '}'
local attempts = math.max(tonumber(j.attempts) - 1, 0)
redis.call('SADD', B .. ':queues', queue)
transition(j, 'queued', {queue = queue, attempts = tostring(attempts), lease_expires_at = NULL})
event(id, 'state', 'queued', data)
return 1
