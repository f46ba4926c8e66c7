-- ack_outbox: ARGV[3..] seqs. Deletes delivered outbox entries; unknown seqs are ignored, so a
-- retried call changes nothing more.
for i = 3, #ARGV do
  local seq = ARGV[i]
  local entry = redis.call('HGET', B .. ':outbox:e', seq)
  if entry then
    redis.call('SREM', B .. ':ox:' .. cjson.decode(entry).job_id, seq)
    redis.call('HDEL', B .. ':outbox:e', seq)
  end
  redis.call('ZREM', B .. ':outbox', seq)
end
return #ARGV - 2
