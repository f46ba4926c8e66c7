-- heartbeat: ARGV[3] lease seconds, then (job id, token) pairs. Answers one status per pair:
-- "ok" (lease extended), "canceled" (canceled while running), "lost" (fenced off).
local lease = tonumber(ARGV[3])
local expires = fmt(NOW + lease)
local out = {}
for i = 4, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local j = load(id)
  if running_with(j, token) then
    redis.call('HSET', jkey(id), 'lease_expires_at', expires, 'updated_at', fmt(NOW))
    redis.call('ZADD', B .. ':leases', expires, id)
    out[#out + 1] = 'ok'
  elseif j and j.state == 'canceled' and j.lease_token == token then
    out[#out + 1] = 'canceled'
  else
    out[#out + 1] = 'lost'
  end
end
return out
