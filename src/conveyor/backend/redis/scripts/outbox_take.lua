-- take_outbox: ARGV[3] limit, ARGV[4] lease seconds. Hands out up to `limit` outbox entries
-- whose lease is free (score <= now) and hides them until now + lease; an entry not acked by
-- then is handed out again. Returns {seq, entry JSON} pairs. A retried call only extends the
-- leases of entries it already took: harmless.
local key = B .. ':outbox'
local leased_until = NOW + tonumber(ARGV[4])
local out = {}
for _, seq in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', fmt(NOW), 'LIMIT', 0, tonumber(ARGV[3]))) do
  local entry = redis.call('HGET', B .. ':outbox:e', seq)
  if entry then
    redis.call('ZADD', key, leased_until, seq)
    out[#out + 1] = {seq, entry}
  else
    redis.call('ZREM', key, seq)
  end
end
return out
