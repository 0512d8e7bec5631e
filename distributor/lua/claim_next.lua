--[[ claim_next: give the best ready task (highest priority, then oldest) to an agent.
  ARGV[5] agent id, ARGV[6] lease ms for this claim ('' = the task's own),
  ARGV[7] at most this many expired leases and due retries are recovered first.
  Returns 'ok' {task}, or 'none' {now, next_due}: next_due is the earliest ms at which a
  retry backoff or a lease ends (nil when none), so a waiting client knows when to look again.
]]
local OP = 'claim_next'
--@include common
local prev = replay()
if prev then return prev end

local agent, lease, limit = ARGV[5], ARGV[6], tonumber(ARGV[7])
local now = now_ms()
local task, next_due = claim_best(now, agent, lease, limit)
if task then return done({task = task}) end
return refuse('none', {now = now, next_due = next_due})
