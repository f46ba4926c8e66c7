-- checkpoint: ARGV[3] job id, [4] lease token, [5] state JSON. ctx.checkpoint: the task's
-- resume state, stored only while this token holds the job (no event). 1 done, 0 fenced off.
local id, token, state = ARGV[3], ARGV[4], ARGV[5]
local j = load(id)
if not running_with(j, token) then
  return 0
end
redis.call('HSET', jkey(id), 'checkpoint', state, 'updated_at', fmt(NOW))
return 1
