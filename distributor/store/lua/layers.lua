--[[ layers: a slice of the swarm's tasks counted by layer and status (writes nothing).
  ARGV[6], ARGV[7]: the first and last rank of the slice in the all-tasks index (ZRANGE).
  What `plan show` summarises a large graph with: per task it reads only `status` and the
  `layer` stored at submit (submit_plan.lua, add_task.lua), and returns per layer, not per
  task. A `waiting` task whose retry_at has come counts as `available`, as counts.lua counts it.
  Returns {'ok', how many ids the slice listed, JSON rows}, a row per layer met: a list of
  its layer, {status: n} and its first ARGV[8] ids in submission order; or {'unlayered', listed, id} at the
  first task stored without a layer (by an older version): the caller then reads the graph
  (outline.lua) instead.
]]
--@include common
local FIRST = tonumber(ARGV[8])
local now = now_ms()
local ids = rcall('ZRANGE', K_ALL, ARGV[6], ARGV[7])
local by_layer, order = {}, {}
for _, id in ipairs(ids) do
  local tkey = task_key(id)
  local f = rcall('HMGET', tkey, 'status', 'layer')
  local status = f[1]
  if status then
    if not f[2] then return {'unlayered', #ids, id} end
    if status == 'waiting' and tonumber(rcall('HGET', tkey, 'retry_at') or '0') <= now then
      status = 'available'
    end
    local row = by_layer[f[2]]
    if not row then
      row = {tonumber(f[2]), {}, {}}
      by_layer[f[2]] = row
      order[#order + 1] = row
    end
    row[2][status] = (row[2][status] or 0) + 1
    if #row[3] < FIRST then row[3][#row[3] + 1] = id end
  end
end
return {'ok', #ids, cjson.encode(order)}
