--[[ release: the holder hands its task back unfinished, without counting a failed attempt.
  ARGV[6] task id, ARGV[7] agent id, ARGV[8] fencing token.
  Returns 'ok' {task} (now available), or 'not_found' / 'stale' / 'request_id_reused'.
]]
--@include common
local prev = replay()
if prev then return prev end

local id, agent, token = ARGV[6], ARGV[7], ARGV[8]
local tkey = task_key(id)
local refused = check_holder(tkey, agent, token)
if refused then return refused end

local now = now_ms()
local status = rcall('HGET', tkey, 'status')
clear_claim(tkey, id, 'released', now)
rcall('HINCRBY', tkey, 'attempts', -1)
make_available(tkey, id, status)
emit(now, 'released', id, agent, {'token', token})
local task = task_table(tkey)
return done({task = task}, {t = ref(task, 1)})
