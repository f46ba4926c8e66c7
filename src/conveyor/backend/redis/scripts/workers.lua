-- Live worker nodes (layout: docs/operations-redis.md). One hash B:workers, field = worker id,
-- value = JSON {info, started_at, last_seen} stamped with the Redis clock. ARGV[3] is the operation:
--   beat    [4] worker id, [5] info JSON -> 1
--   list    -> {worker id, record JSON, silent seconds} per node
--   forget  [4] worker id -> 1 when it was registered, else 0
--   silent  [4] seconds -> how many nodes silent that long were forgotten
-- Idempotent: a redone beat stamps a newer time, a redone forget finds nothing more to delete.
local index = B .. ':workers'
local op = ARGV[3]

if op == 'beat' then
  local id = ARGV[4]
  local started = NOW
  local old = redis.call('HGET', index, id)
  if old then
    started = cjson.decode(old)['started_at']
  end
  -- the caller's info JSON is stored verbatim: a cjson round trip would turn its empty lists into {}
  local record = '{"info":' .. ARGV[5] .. ',"started_at":' .. fmt(started) .. ',"last_seen":' .. fmt(NOW) .. '}'
  redis.call('HSET', index, id, record)
  return 1
elseif op == 'list' then
  local out = {}
  local flat = redis.call('HGETALL', index)
  for i = 1, #flat, 2 do
    local rec = cjson.decode(flat[i + 1])
    out[#out + 1] = {flat[i], flat[i + 1], fmt(NOW - rec['last_seen'])}
  end
  return out
elseif op == 'forget' then
  return redis.call('HDEL', index, ARGV[4])
elseif op == 'silent' then
  local limit = tonumber(ARGV[4])
  local n = 0
  local flat = redis.call('HGETALL', index)
  for i = 1, #flat, 2 do
    if NOW - cjson.decode(flat[i + 1])['last_seen'] >= limit then
      redis.call('HDEL', index, flat[i])
      n = n + 1
    end
  end
  return n
end
return redis.error_reply('unknown workers operation ' .. tostring(op))
