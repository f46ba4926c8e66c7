-- record_effect: ARGV[3] job id, [4] lease token, [5] effect key, [6] value JSON. Fenced like
-- progress: "lost" (nothing stored) unless the job is running with this token; then "recorded"
-- when the key is new, "exists" when it was recorded earlier (that record is kept).
local id, token, name, value = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if not running_with(load(id), token) then
  return 'lost'
end
if redis.call('HSETNX', B .. ':fx:' .. id, name, value) == 1 then
  return 'recorded'
end
return 'exists'
