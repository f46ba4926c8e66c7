-- claim: ARGV[3] worker id, [4] lease seconds, [5] limit, [6] number of queues, then the
-- queue names, then `limit` fresh lease tokens (made by the caller: Lua has no good randomness).
-- Promotes due scheduled jobs of these queues, then takes the best `limit` ready jobs across
-- the non-paused queues in priority DESC, run_at ASC, id ASC order.
local worker, lease, limit, nq = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local queues, tokens = {}, {}
for i = 1, nq do
  queues[i] = ARGV[6 + i]
end
for i = 1, limit do
  tokens[i] = ARGV[6 + nq + i]
end
local candidates = {}
for _, q in ipairs(queues) do
  promote_queue(q, math.max(limit, 1000))
  if not is_paused(q) then
    local top = redis.call('ZRANGE', B .. ':ready:' .. q, 0, limit - 1, 'WITHSCORES')
    for i = 1, #top, 2 do
      candidates[#candidates + 1] = {member = top[i], score = tonumber(top[i + 1])}
    end
  end
end
if nq > 1 then
  table.sort(candidates, function(a, b)
    if a.score ~= b.score then
      return a.score < b.score
    end
    return a.member < b.member
  end)
end

local out = {}
local expires = fmt(NOW + lease)
for i = 1, math.min(limit, #candidates) do
  local id = string.sub(candidates[i].member, 22)
  local j = load(id)
  local attempt = tonumber(j.attempts) + 1
  transition(j, 'running', {attempts = tostring(attempt), lease_token = tokens[i], lease_expires_at = expires,
    worker_id = worker, started_at = fmt(NOW)})
  event(id, 'state', 'running', cjson.encode({attempt = attempt, worker = worker}))
  out[#out + 1] = hgetall(id)
end
return out
