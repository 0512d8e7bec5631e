--[[ claim_next: give the best ready task (highest priority, then oldest) to an agent.
  ARGV[6] agent id, ARGV[7] lease ms for this claim ('' = the task's own),
  ARGV[8] at most this many expired leases and due retries are recovered first.
  Returns 'ok' {task}, or 'none' {now, next_due}: next_due is the earliest ms at which a
  retry backoff or a lease ends (nil when none), so a waiting client knows when to look again; or 'request_id_reused'.
]]
--@include common
local prev = replay()
if prev then return prev end

local agent, lease, limit = ARGV[6], ARGV[7], tonumber(ARGV[8])
local now = now_ms()
local task, next_due = claim_best(now, agent, lease, limit)
if task then return done({task = task}, {t = ref(task, GRANT)}) end
return refuse('none', {now = now, next_due = next_due})
