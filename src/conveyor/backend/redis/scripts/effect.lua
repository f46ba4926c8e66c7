-- record_effect: ARGV[3] job id, [4] effect key, [5] value JSON. 1 when recorded now, 0 when
-- it already was (on a retried call, our own earlier write counts as "recorded now").
local key = B .. ':fx:' .. ARGV[3]
if redis.call('HSETNX', key, ARGV[4], ARGV[5]) == 1 then
  return 1
end
if RETRY and redis.call('HGET', key, ARGV[4]) == ARGV[5] then
  return 1
end
return 0
