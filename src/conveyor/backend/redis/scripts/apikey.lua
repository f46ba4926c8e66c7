-- API keys of the job service (layout: docs/operations-redis.md). ARGV[3] is the operation:
--   create  [4] key id, [5] name, [6] tenant, [7] scopes JSON, [8] secret hash,
--           [9] created_at / [10] revoked_at ('' = now / active; set only when importing old keys)
--           -> the key's fields, or 'exists' when the id or the hash is taken
--   find    [4] secret hash -> the key's fields, or false
--   list    -> the fields of every key
--   revoke  [4] key id -> 1 when revoked now, 0 when unknown or already revoked
-- Retry-safe: a retried create that finds its own earlier write (same id and hash) answers the
-- key; a retried revoke that finds the key revoked answers 1 (its first run revoked it).
local index = B .. ':apikeys'
local op = ARGV[3]

local function akey(id)
  return B .. ':apikey:' .. id
end

if op == 'create' then
  local id, hash = ARGV[4], ARGV[8]
  local owner = redis.call('HGET', index, hash)
  if owner or redis.call('EXISTS', akey(id)) == 1 then
    if RETRY and owner == id then
      return redis.call('HGETALL', akey(id))
    end
    return 'exists'
  end
  local created = ARGV[9] ~= '' and ARGV[9] or fmt(NOW)
  redis.call('HSET', akey(id), 'key_id', id, 'name', ARGV[5], 'tenant', ARGV[6], 'scopes', ARGV[7],
    'secret_hash', hash, 'created_at', created)
  if ARGV[10] ~= '' then
    redis.call('HSET', akey(id), 'revoked_at', ARGV[10])
  end
  redis.call('HSET', index, hash, id)
  return redis.call('HGETALL', akey(id))
elseif op == 'find' then
  local id = redis.call('HGET', index, ARGV[4])
  if not id then
    return false
  end
  return redis.call('HGETALL', akey(id))
elseif op == 'list' then
  local out = {}
  for _, id in ipairs(redis.call('HVALS', index)) do
    out[#out + 1] = redis.call('HGETALL', akey(id))
  end
  return out
elseif op == 'revoke' then
  local key = akey(ARGV[4])
  if redis.call('EXISTS', key) == 0 then
    return 0
  end
  if redis.call('HEXISTS', key, 'revoked_at') == 1 then
    return RETRY and 1 or 0
  end
  redis.call('HSET', key, 'revoked_at', fmt(NOW))
  return 1
end
return redis.error_reply('unknown apikey operation ' .. tostring(op))
