--[[ claim: give one named task to an agent.
  ARGV[5] task id, ARGV[6] agent id, ARGV[7] lease ms for this claim ('' = the task's own).
  An active claim whose lease ran out is expired first, so the task can be claimed again.
  Returns 'ok' {task} (task.token is the fencing token), or a refusal with {task}:
  'not_found', 'already_claimed', 'blocked', 'not_available' (completed, failed, or in backoff).
]]
local OP = 'claim'
--@include common
local prev = replay()
if prev then return prev end

local id, agent, lease = ARGV[5], ARGV[6], ARGV[7]
local tkey = task_key(id)
local status = rcall('HGET', tkey, 'status')
if not status then return refuse('not_found') end

local now = now_ms()
if is_active(status) and tonumber(rcall('HGET', tkey, 'lease_expires_at')) <= now then
  expire(now, id)
  status = rcall('HGET', tkey, 'status')
end
if is_active(status) then return refuse('already_claimed', {task = task_table(tkey)}) end
if status == 'blocked' then return refuse('blocked', {task = task_table(tkey)}) end
if status ~= 'available' then return refuse('not_available', {task = task_table(tkey)}) end
local due = rcall('ZSCORE', K_DELAYED, id)
if due and tonumber(due) > now then return refuse('not_available', {task = task_table(tkey)}) end
return done({task = grant(now, id, agent, lease)})
