--[[ start: the holder began work; claimed -> in_progress, and the lease is renewed.
  ARGV[6] task id, ARGV[7] agent id, ARGV[8] fencing token, ARGV[9] lease ms ('' = the claim's).
  The task's file reservations are extended with the lease.
  Returns 'ok' {task}, or 'not_found' / 'stale' / 'request_id_reused'. Starting twice is harmless.
]]
--@include common
local prev = replay()
if prev then return prev end

local id, agent, token, lease = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local tkey = task_key(id)
local refused = check_holder(tkey, agent, token)
if refused then return refused end

local now = now_ms()
if lease == '' then lease = rcall('HGET', tkey, 'lease_ms_claim') end
local expires = now + tonumber(lease)
rcall('HSET', tkey, 'lease_expires_at', int(expires))
rcall('ZADD', K_CLAIMED, int(expires), id)
extend_task_files(tkey, id, expires)
local status = rcall('HGET', tkey, 'status')
if status == 'claimed' then
  move(tkey, 'claimed', 'in_progress')
  rcall('HSET', tkey, 'started_at', int(now))
  emit(now, 'started', id, agent, {'token', token})
end
local task = task_table(tkey)
return done({task = task}, {t = ref(task, 6)})
