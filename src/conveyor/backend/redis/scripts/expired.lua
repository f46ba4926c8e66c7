-- expired: ARGV[3] limit. What the reaper needs to decide (conveyor/reaper.py): running jobs
-- whose lease expired, oldest expiry first, as flat (id, token, attempts, max_attempts) groups.
-- Read only. Index entries of jobs no longer running are skipped (expire.lua drops them).
local ids = redis.call('ZRANGEBYSCORE', B .. ':leases', '-inf', '(' .. fmt(NOW), 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local j = load(id)
  if j and j.state == 'running' then
    out[#out + 1] = id
    out[#out + 1] = j.lease_token
    out[#out + 1] = j.attempts
    out[#out + 1] = j.max_attempts
  end
end
return out
