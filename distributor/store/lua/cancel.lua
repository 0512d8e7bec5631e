--[[ cancel: an operator stops a task that is not finished; it becomes `failed` ("cancelled")
  and its dependents stay blocked until an operator retries it. A holder's later calls are
  refused as stale. ARGV[6] task id, ARGV[7] reason.
  Returns 'ok' {task}, or 'not_found' / 'invalid' {task} when completed or already failed.
]]
--@include common
local id, reason = ARGV[6], ARGV[7]
local tkey = task_key(id)
local status = rcall('HGET', tkey, 'status')
if not status then return refuse('not_found') end
if status == 'completed' or status == 'failed' then
  return refuse('invalid', {task = task_table(tkey)})
end

local now = now_ms()
local agent = rcall('HGET', tkey, 'agent_id')
clear_claim(tkey, id, 'cancelled', now)
give_up(now, tkey, id, status, reason)
emit(now, 'cancelled', id, agent, {'reason', reason})
return done({task = task_table(tkey)})
