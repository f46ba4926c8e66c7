-- queue_position: ARGV[3] job id. How many ready jobs of its queue are claimed before it;
-- false unless the job is queued.
local j = load(ARGV[3])
if not j or j.state ~= 'queued' then
  return false
end
return redis.call('ZRANK', B .. ':ready:' .. j.queue, ready_member(j))
