--[[ counts: how many tasks are in each status, read in one atomic step (writes nothing).
  No arguments of its own. A `waiting` task whose retry_at has come is counted as `available`,
  which it is (the next claim or reap only records it), so the numbers match what `claim` and
  the task reads say at this Redis time.
  Returns 'ok' {counts = {status: n}, failed = [ids]}.
]]
--@include common
local now = now_ms()
local flat = rcall('HGETALL', K_COUNTS)
local counts = {}
for i = 1, #flat, 2 do counts[flat[i]] = tonumber(flat[i + 1]) end
local due = rcall('ZCOUNT', K_DELAYED, '-inf', int(now))
if due > 0 then
  counts.waiting = (counts.waiting or 0) - due
  counts.available = (counts.available or 0) + due
end
return {'ok', cjson.encode({counts = counts, failed = rcall('SMEMBERS', K_FAILED)})}
