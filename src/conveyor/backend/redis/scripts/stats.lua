-- queue_stats: ARGV[3] tenant ("" = every tenant). One entry per queue that has jobs or a
-- pause flag: JSON {queue: {counts: {state: n}, oldest: run_at or absent, paused: bool}}.
local tenant = ARGV[3]
local out = {}
for _, q in ipairs(redis.call('SMEMBERS', B .. ':queues')) do
  local flat = redis.call('HGETALL', B .. ':counts:' .. q)
  local counts, total, tenants = {}, 0, {}
  for i = 1, #flat, 2 do
    local sep = string.find(flat[i], ':', 1, true)
    local state, t = string.sub(flat[i], 1, sep - 1), string.sub(flat[i], sep + 1)
    local n = tonumber(flat[i + 1])
    if n > 0 and (tenant == '' or t == tenant) then
      counts[state] = (counts[state] or 0) + n
      total = total + n
      if state == 'queued' then
        tenants[#tenants + 1] = t
      end
    end
  end
  local paused = redis.call('HGET', B .. ':paused', q)
  if total > 0 or paused then
    local entry = {counts = counts, paused = paused == '1'}
    for _, t in ipairs(tenants) do
      local first = redis.call('ZRANGE', B .. ':age:' .. #t .. ':' .. t .. ':' .. q, 0, 0, 'WITHSCORES')
      if first[2] and (entry.oldest == nil or tonumber(first[2]) < tonumber(entry.oldest)) then
        entry.oldest = first[2]
      end
    end
    out[q] = entry
  end
end
return {fmt(NOW), cjson.encode(out)}
