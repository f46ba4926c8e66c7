-- complete_many: ARGV[3..] triples (job id, lease token, result JSON). Each triple is exactly
-- complete.lua, in order, fenced on its own token; all in this one script call (atomic).
-- Returns one 1 (done) / 0 (fenced off) per triple.
local out = {}
for i = 3, #ARGV, 3 do
  local id, token, result = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local j = load(id)
  if running_with(j, token) then
    transition(j, 'succeeded', {result = result, finished_at = fmt(NOW), lease_expires_at = NULL, progress = '1.0', error = NULL})
    event(id, 'state', 'succeeded', '{}')
    settle_dependents(id, 'succeeded')
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
