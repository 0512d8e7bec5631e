--[[ claim: give one named task to an agent.
  ARGV[6] task id, ARGV[7] agent id, ARGV[8] lease ms for this claim ('' = the task's own).
  An active claim whose lease ran out is expired first, so the task can be claimed again; a
  waiting task whose retry time has come is made available first.
  Returns 'ok' {task} (task.token is the fencing token), or a refusal with {task}:
  'not_found', 'already_claimed', 'blocked', 'waiting' (in a retry backoff until task.retry_at),
  'not_available' (completed or failed), 'reserved' {task, holders}: another agent's live
  reservation conflicts with the task's files (a `reserve-refused` event names them);
  or 'request_id_reused' (see common.lua).
]]
--@include common
local prev = replay()
if prev then return prev end

local id, agent, lease = ARGV[6], ARGV[7], ARGV[8]
local tkey = task_key(id)
local status = rcall('HGET', tkey, 'status')
if not status then return refuse('not_found') end

local now = now_ms()
if is_active(status) and tonumber(rcall('HGET', tkey, 'lease_expires_at')) <= now then
  expire(now, id)
  status = rcall('HGET', tkey, 'status')
end
if is_active(status) then return refuse('already_claimed', {task = task_table(tkey)}) end
if status == 'waiting' and tonumber(rcall('HGET', tkey, 'retry_at')) <= now then
  promote(id)
  status = 'available'
end
if status == 'blocked' or status == 'waiting' then return refuse(status, {task = task_table(tkey)}) end
if status ~= 'available' then return refuse('not_available', {task = task_table(tkey)}) end
local held = task_conflicts(now, id, tkey, agent)
if #held > 0 then
  local holders = holders_json(held)
  record(now, 'reserve-refused', id, agent,
         {'skipped', cjson.encode({id}), 'holders', cjson.encode(holders)})
  return refuse('reserved', {task = task_table(tkey), holders = holders})
end
local task = grant(now, id, agent, lease)
return done({task = task}, {t = ref(task, GRANT)})
