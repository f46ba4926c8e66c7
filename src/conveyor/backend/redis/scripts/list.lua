-- list_jobs: ARGV[3] tenant, [4] queue, [5] task ("" = any), [6] states (comma list, "" = any),
-- [7] cursor ("" = from the newest), [8] limit, [9] workflow ("" = any; walks that workflow's
-- index instead of every id). Walks ids newest first and returns
-- {next_cursor or "", job, job, ...}. At most `budget` ids are looked at per call so a rare
-- filter never blocks Redis: the page may then be short, with a cursor to continue from.
local tenant, queue, task, states, cursor, limit = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local index = B .. ':ids'
if ARGV[9] and ARGV[9] ~= '' then
  index = B .. ':wf:' .. ARGV[9]
end
local wanted = nil
if states ~= '' then
  wanted = {}
  for s in string.gmatch(states, '[^,]+') do
    wanted[s] = true
  end
end
local budget, chunk = 20000, 500
local max = '+'
if cursor ~= '' then
  max = '(' .. cursor
end
local found, last = {}, nil
while budget > 0 and #found <= limit do
  local ids = redis.call('ZREVRANGEBYLEX', index, max, '-', 'LIMIT', 0, chunk)
  if #ids == 0 then
    last = nil
    break
  end
  for _, id in ipairs(ids) do
    local v = redis.call('HMGET', jkey(id), 'tenant', 'queue', 'task', 'state')
    if v[1] and (tenant == '' or v[1] == tenant) and (queue == '' or v[2] == queue)
      and (task == '' or v[3] == task) and (wanted == nil or wanted[v[4]]) then
      found[#found + 1] = id
      if #found > limit then
        break
      end
    end
    last = id
  end
  budget = budget - #ids
  max = '(' .. ids[#ids]
end
local out = {''}
for i = 1, math.min(limit, #found) do
  out[#out + 1] = hgetall(found[i])
end
if #found > limit then
  out[1] = found[limit]
elseif budget <= 0 and last then
  out[1] = last
end
return out
