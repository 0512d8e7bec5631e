--[[ complete: the holder finished its task, and may take the next one in the same step.
  ARGV[6] task id, ARGV[7] agent id, ARGV[8] fencing token,
  ARGV[9] '1' to claim the best ready task for the same agent afterwards (one round trip per
  task instead of two), ARGV[10] its lease ms ('' = the task's own), ARGV[11] reap limit,
  ARGV[12] how many ready tasks the next claim looks at when files are reserved.
  The task's file reservations are freed first, so the next claim may take the same files.
  Only the finished task's dependents (its `dependents` field) are visited: each counts one
  unmet dependency less, and those left with none become available. Returns 'ok' {task, unblocked, next (the claimed task, when
  asked and one was ready)}, or 'not_found' / 'stale' / 'request_id_reused'.
]]
--@include common
local prev = replay()
if prev then return prev end

local id, agent, token = ARGV[6], ARGV[7], ARGV[8]
local tkey = task_key(id)
local refused, held = check_holder(tkey, agent, token)
if refused then return refused end

local now = now_ms()
count_later()  -- every return below comes after count_now()
move(tkey, held.status, 'completed', 'completed_at', int(now))
rcall('ZREM', K_CLAIMED, id)
rcall('HDEL', tkey, 'lease_expires_at')
free_task_files(tkey, id, 'completed', now, held.rkeys or '')
local unblocked = {}
for dep in string.gmatch(held.dependents or '', '[^,]+') do
  local dkey = task_key(dep)
  if rcall('HINCRBY', dkey, 'unmet', -1) == 0 then
    local d = rcall('HMGET', dkey, 'status', 'rank')
    if d[1] == 'blocked' then
      make_available(dkey, dep, 'blocked', d[2])
      unblocked[#unblocked + 1] = dep
    end
  end
end
table.sort(unblocked)
emit(now, 'completed', id, agent, {'unblocked', table.concat(unblocked, ',')})
-- the task as stored now: what check_holder read, with what this script wrote to it
local finished = held
finished.status, finished.completed_at, finished.lease_expires_at = 'completed', int(now), nil
local next_task = nil
if ARGV[9] == '1' then next_task = claim_best(now, agent, ARGV[10], tonumber(ARGV[11]), ARGV[12]) end
count_now()
return done({task = finished, unblocked = unblocked, next = next_task},
            {t = ref(finished, 0), u = unblocked, n = next_task and ref(next_task, GRANT) or nil})
