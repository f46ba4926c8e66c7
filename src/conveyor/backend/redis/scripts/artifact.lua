-- artifact: ARGV[3] job id, [4] token, [5] artifact name, [6] artifact JSON. Replaces an
-- artifact of the same name. 1 done, 0 fenced off.
local id, token, name, artifact = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local j = load(id)
if not running_with(j, token) then
  return 0
end
local key = jkey(id)
local items = {}
for _, a in ipairs(cjson.decode(redis.call('HGET', key, 'artifacts') or '[]')) do
  if a.name ~= name then
    items[#items + 1] = cjson.encode(a)
  end
end
items[#items + 1] = artifact
redis.call('HSET', key, 'artifacts', '[' .. table.concat(items, ',') .. ']', 'updated_at', fmt(NOW))
event(id, 'artifact', 'running', artifact)
return 1
