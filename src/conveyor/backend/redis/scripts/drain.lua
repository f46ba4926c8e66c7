-- drain_stats: ARGV[3] queue, [4] window seconds. Jobs of the queue finished since now - window.
return redis.call('ZCOUNT', B .. ':done:' .. ARGV[3], fmt(NOW - tonumber(ARGV[4])), '+inf')
