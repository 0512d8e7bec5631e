--[[ fail: the holder could not finish its task.
  ARGV[6] task id, ARGV[7] agent id, ARGV[8] fencing token, ARGV[9] reason,
  ARGV[10] '1' to retry, ARGV[11] backoff base ms, ARGV[12] backoff cap ms.
  With retry and attempts left, the task is `waiting` (in `delayed`, with retry_at) until
  base * 2^(attempts-1) ms (at most cap) have passed, then available again (see promote in
  common.lua); otherwise it is `failed` and its dependents stay blocked. The `failed` event
  says which: status=waiting with retry_at, or status=failed with final=1.
  Returns 'ok' {task, will_retry, retry_at}, or 'not_found' / 'stale' / 'request_id_reused'.
]]
--@include common
local prev = replay()
if prev then return prev end

local id, agent, token, reason = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local retry, base, cap = ARGV[10] == '1', tonumber(ARGV[11]), tonumber(ARGV[12])
local tkey = task_key(id)
local refused, held = check_holder(tkey, agent, token)
if refused then return refused end

local now = now_ms()
local status, attempts, max = held.status, tonumber(held.attempts), tonumber(held.max_attempts)
clear_claim(tkey, id, 'failed', now)
if retry and attempts < max then
  local due = now + math.min(cap, base * 2 ^ (attempts - 1))
  move(tkey, status, 'waiting', 'retry_at', int(due), 'last_error', reason)
  rcall('ZADD', K_DELAYED, int(due), id)
  emit(now, 'failed', id, agent,
       {'reason', reason, 'attempts', int(attempts), 'status', 'waiting', 'retry_at', int(due)})
  local task = task_table(tkey)
  return done({task = task, will_retry = true, retry_at = due},
              {t = ref(task, #REF_FIELDS), will_retry = true, retry_at = due})
end
give_up(now, tkey, id, status, reason)
emit(now, 'failed', id, agent,
     {'reason', reason, 'attempts', int(attempts), 'status', 'failed', 'final', '1'})
local task = task_table(tkey)
return done({task = task, will_retry = false},
            {t = ref(task, #REF_FIELDS), will_retry = false})
