--[[ outline: a slice of the swarm's tasks in submission order, compactly (writes nothing).
  ARGV[6], ARGV[7]: the first and last rank of the slice in the all-tasks index (ZRANGE).
  What `plan show` needs to summarise a large graph, a few thousand tasks per call instead
  of one pipelined read per task. A `waiting` task whose retry_at has come shows as
  `available`, as counts.lua counts it.
  Returns {'ok', how many ids the slice listed, "id<TAB>status<TAB>dependencies JSON" lines}
  (plain strings, not the usual JSON payload: 100,000 rows decode faster so).
]]
--@include common
local now = now_ms()
local ids = rcall('ZRANGE', K_ALL, ARGV[6], ARGV[7])
local rows = {}
for _, id in ipairs(ids) do
  local f = rcall('HMGET', task_key(id), 'status', 'dependencies', 'retry_at')
  if f[1] then
    local status = f[1]
    if status == 'waiting' and tonumber(f[3] or '0') <= now then status = 'available' end
    rows[#rows + 1] = id .. '\t' .. status .. '\t' .. (f[2] or '')
  end
end
return {'ok', #ids, table.concat(rows, '\n')}
