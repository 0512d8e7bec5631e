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
reap_expired(now, limit)
promote_due(now, limit)
local popped = rcall('ZPOPMIN', K_READY)
if #popped == 0 then
  local next_due = nil
  for _, key in ipairs({K_DELAYED, K_CLAIMED}) do
    local head = rcall('ZRANGE', key, 0, 0, 'WITHSCORES')
    if #head > 0 and (next_due == nil or tonumber(head[2]) < next_due) then
      next_due = tonumber(head[2])
    end
  end
  return refuse('none', {now = now, next_due = next_due})
end
return grant(now, popped[1], agent, lease)
