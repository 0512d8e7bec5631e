--[[ heartbeat: the holder is alive; its lease is renewed from now.
  ARGV[6] task id, ARGV[7] agent id, ARGV[8] fencing token, ARGV[9] lease ms ('' = the claim's).
  The task's file reservations are extended with the lease.
  Returns 'ok' {task}, or 'not_found' / 'stale' (then a `heartbeat-lost` event is recorded).
]]
--@include common
local id, agent, token, lease = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local tkey = task_key(id)
local refused, held = check_holder(tkey, agent, token)
local now = now_ms()
if refused then
  if refused[1] == 'stale' then emit(now, 'heartbeat-lost', id, agent, {'token', token}) end
  return refused
end

if lease == '' then lease = held.lease_ms_claim end
local expires = now + tonumber(lease)
rcall('HSET', tkey, 'lease_expires_at', int(expires))
rcall('ZADD', K_CLAIMED, int(expires), id)
extend_task_files(tkey, id, expires, held.rkeys or '')
held.lease_expires_at = int(expires)
return done({task = held})
