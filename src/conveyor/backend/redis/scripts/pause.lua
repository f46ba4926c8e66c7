-- set_paused: ARGV[3] queue, [4] "1" paused / "0" running. Resuming wakes idle workers.
redis.call('HSET', B .. ':paused', ARGV[3], ARGV[4])
redis.call('SADD', B .. ':queues', ARGV[3])
if ARGV[4] == '0' then
  wake(ARGV[3])
end
return 1
