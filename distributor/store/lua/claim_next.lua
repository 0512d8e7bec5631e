--[[ claim_next: give the best ready task (highest priority, then oldest) to an agent.
  ARGV[6] agent id, ARGV[7] lease ms for this claim ('' = the task's own),
  ARGV[8] at most this many expired leases and due retries are recovered first,
  ARGV[9] at most this many ready tasks are looked at when files are reserved (the best one
  whose files are free for the agent is taken; the others keep their place).
  Returns 'ok' {task}, or 'none' {now, next_due, holders, skipped}: next_due is the earliest
  ms at which a retry backoff, a lease or a holding reservation ends (nil when none), so a
  waiting client knows when to look again; holders (the reservations that kept the ready
  tasks, see holders_json) and skipped (those tasks' ids) are empty unless files held them;
  or 'request_id_reused'.
]]
--@include common
local prev = replay()
if prev then return prev end

local agent, lease, limit = ARGV[6], ARGV[7], tonumber(ARGV[8])
local now = now_ms()
local task, next_due, held, skipped = claim_best(now, agent, lease, limit, ARGV[9])
if task then return done({task = task}, {t = ref(task, GRANT)}) end
return refuse('none', {now = now, next_due = next_due, holders = holders_json(held or {}),
                       skipped = skipped or {}})
