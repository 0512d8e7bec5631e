--[[ retry: an operator gives a failed task a fresh start (attempts reset).
  ARGV[6] task id. It becomes `available`, or `blocked` while a dependency is unfinished.
  Returns 'ok' {task}, or 'not_found' / 'invalid' {task} when the task is not failed.
]]
--@include common
local id = ARGV[6]
local tkey = task_key(id)
local status = rcall('HGET', tkey, 'status')
if not status then return refuse('not_found') end
if status ~= 'failed' then return refuse('invalid', {task = task_table(tkey)}) end

local now = now_ms()
rcall('SREM', K_FAILED, id)
rcall('HSET', tkey, 'attempts', '0')
rcall('HDEL', tkey, 'failed_at', 'last_error', 'retry_at')
if tonumber(rcall('HGET', tkey, 'unmet') or '0') == 0 then
  make_available(tkey, id, 'failed')
else
  move(tkey, 'failed', 'blocked')
end
emit(now, 'retried', id, '', {})
return done({task = task_table(tkey)})
