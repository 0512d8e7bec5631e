--[[ complete: the holder finished its task.
  ARGV[5] task id, ARGV[6] agent id, ARGV[7] fencing token.
  Only the finished task's dependents are visited: each loses this unmet dependency, and those
  left with none become available. Returns 'ok' {task, unblocked}, or 'not_found' / 'stale'.
]]
local OP = 'complete'
--@include common
local prev = replay()
if prev then return prev end

local id, agent, token = ARGV[5], ARGV[6], ARGV[7]
local tkey = task_key(id)
local refused = check_holder(tkey, agent, token)
if refused then return refused end

local now = now_ms()
move(tkey, rcall('HGET', tkey, 'status'), 'completed')
rcall('ZREM', K_CLAIMED, id)
rcall('HSET', tkey, 'completed_at', int(now))
rcall('HDEL', tkey, 'lease_expires_at')
local unblocked = {}
for _, dep in ipairs(rcall('SMEMBERS', dependents_key(id))) do
  local dkey = deps_key(dep)
  rcall('SREM', dkey, id)
  if rcall('SCARD', dkey) == 0 and rcall('HGET', task_key(dep), 'status') == 'blocked' then
    make_available(task_key(dep), dep, 'blocked')
    unblocked[#unblocked + 1] = dep
  end
end
table.sort(unblocked)
emit(now, 'completed', id, agent, {'unblocked', table.concat(unblocked, ',')})
return done({task = task_table(tkey), unblocked = unblocked})
