-- progress: ARGV[3] job id, [4] token, [5] fraction and [6] message ("" = none, else "=" then
-- the value, so an empty message stays distinct from no message),
-- [7] event data JSON. Only the lease holder may report. 1 done, 0 fenced off.
local id, token, fraction, message, data = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local j = load(id)
if not running_with(j, token) then
  return 0
end
local key = jkey(id)
redis.call('HSET', key, 'updated_at', fmt(NOW))
if fraction == '' then
  redis.call('HDEL', key, 'progress')
else
  redis.call('HSET', key, 'progress', string.sub(fraction, 2))
end
if message == '' then
  redis.call('HDEL', key, 'progress_message')
else
  redis.call('HSET', key, 'progress_message', string.sub(message, 2))
end
event(id, 'progress', 'running', data)
return 1
