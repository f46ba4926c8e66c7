-- promote: due scheduled jobs of every queue become queued. Returns how many.
local n = 0
for _, q in ipairs(redis.call('SMEMBERS', B .. ':queues')) do
  n = n + promote_queue(q, 10000)
end
return n
