--[[ submit_plan: add a whole plan, all or nothing.
  ARGV[6]: JSON list of tasks in submission order (Python validated them and refused cycles):
           {id, title, deps (list of ids), priority, max_attempts, lease_ms, and when not
            empty: description, files and shared_files (JSON text), estimated_minutes,
            rkeys (the files as reservations take them, see include/reservations.lua)}
           (distributor/tasks/hashes.py: plan_payload). `dependencies` is stored as the JSON
           text of deps (ids hold no quote or backslash, so no escaping is needed).
  Each task hash keeps `unmet` (how many dependencies are unfinished) and `dependents` (ids
  of unfinished tasks waiting on it, comma-separated), so a completion reads one field, and
  `layer`, its depth in the graph (0 without dependencies, else 1 + the deepest dependency's),
  so `plan show` summarises by layer without reading the graph (see layers.lua). A task that
  depends on one stored without a layer (submitted by an older version) gets none either.
  Refuses, writing nothing: 'duplicate' {ids} when an id already exists in the swarm;
  'unknown_dependency' {task, dependency} when a dependency is neither in the plan nor the swarm.
  Or 'request_id_reused' (see common.lua).
  Returns 'ok' {ids, available}. The log gets one `submitted` event per task, in plan order,
  with status=available|blocked (a 10,000-task plan: 10,000 small entries, so the log names
  every task submitted); subscribers get one wake-up, for the last of them.
]]
--@include common
local prev = replay()
if prev then return prev end

local tasks = cjson.decode(ARGV[6])
local NONE = {}
local in_plan = {}
for _, t in ipairs(tasks) do
  in_plan[t.id] = true
  t.deps = t.deps or NONE
end

local dups = {}
for _, t in ipairs(tasks) do
  if rcall('EXISTS', task_key(t.id)) == 1 then dups[#dups + 1] = t.id end
end
if #dups > 0 then return refuse('duplicate', {ids = dups}) end
for _, t in ipairs(tasks) do
  for _, d in ipairs(t.deps) do
    if not in_plan[d] and rcall('EXISTS', task_key(d)) == 0 then
      return refuse('unknown_dependency', {task = t.id, dependency = d})
    end
  end
end

-- each task's layer; false when a dependency outside the plan has none (an older task)
local by_id, layer_of, outside = {}, {}, {}
for _, t in ipairs(tasks) do by_id[t.id] = t end
local function outside_layer(d)
  if outside[d] == nil then
    outside[d] = tonumber(rcall('HGET', task_key(d), 'layer') or '') or false
  end
  return outside[d]
end
for _, root in ipairs(tasks) do
  local stack = {root}  -- depth first without recursion (chains may be long; no cycles)
  while #stack > 0 do
    local t = stack[#stack]
    local deepest, pending = -1, false
    if layer_of[t.id] == nil then
      for _, d in ipairs(t.deps) do
        local l
        if by_id[d] then l = layer_of[d] else l = outside_layer(d) end
        if l == nil then
          pending = true
          stack[#stack + 1] = by_id[d]
        elseif l == false or deepest == false then
          deepest = false
        elseif l > deepest then
          deepest = l
        end
      end
      if not pending then layer_of[t.id] = deepest and deepest + 1 end
    end
    if not pending then stack[#stack] = nil end
  end
end

-- who waits on whom: a dependency in the plan gets its `dependents` with its other fields,
-- one outside it (unfinished) has them appended after the loop
local waiting_on, waiters, unmet_of = {}, {}, {}  -- dependency id -> new dependents, in order
for _, t in ipairs(tasks) do
  local unmet = 0
  for _, d in ipairs(t.deps) do
    if in_plan[d] or rcall('HGET', task_key(d), 'status') ~= 'completed' then
      unmet = unmet + 1
      if not waiters[d] then
        waiters[d] = {}
        if not in_plan[d] then waiting_on[#waiting_on + 1] = d end
      end
      table.insert(waiters[d], t.id)
    end
  end
  unmet_of[t.id] = unmet
end

local OPTIONAL = {'description', 'files', 'estimated_minutes', 'shared_files', 'rkeys'}
local now = now_ms()
local created = int(now)
local ids, available = {}, {}
local entry
local first_seq = rcall('INCRBY', K_SEQ, #tasks) - #tasks
local added = {blocked = 0, available = 0}
for i, t in ipairs(tasks) do
  local seq = first_seq + i
  local rank = int((1000 - t.priority) * 1099511627776 + seq)
  local unmet = unmet_of[t.id]
  local status = 'blocked'
  if unmet == 0 then status = 'available' end
  local fields = {'id', t.id, 'title', t.title, 'priority', int(t.priority),
                  'max_attempts', int(t.max_attempts), 'lease_ms', int(t.lease_ms),
                  'status', status, 'attempts', '0', 'token', '0', 'unmet', int(unmet),
                  'created_at', created, 'rank', rank}
  if layer_of[t.id] then
    fields[#fields + 1] = 'layer'
    fields[#fields + 1] = int(layer_of[t.id])
  end
  if #t.deps > 0 then
    fields[#fields + 1] = 'dependencies'
    fields[#fields + 1] = '["' .. table.concat(t.deps, '", "') .. '"]'
  end
  if waiters[t.id] then
    fields[#fields + 1] = 'dependents'
    fields[#fields + 1] = table.concat(waiters[t.id], ',')
  end
  -- optional fields are left out when empty (smaller hashes; readers default them)
  for _, name in ipairs(OPTIONAL) do
    local value = t[name]
    if value and value ~= '' and value ~= '[]' then
      fields[#fields + 1] = name
      fields[#fields + 1] = value
    end
  end
  rcall('HSET', task_key(t.id), unpack(fields))
  rcall('ZADD', K_ALL, seq, t.id)
  added[status] = added[status] + 1
  if status == 'available' then
    rcall('ZADD', K_READY, rank, t.id)
    available[#available + 1] = t.id
  end
  ids[#ids + 1] = t.id
  entry = record(now, 'submitted', t.id, '', {'status', status})
end
for status, n in pairs(added) do
  if n > 0 then rcall('HINCRBY', K_COUNTS, status, n) end
end
-- each unfinished dependency outside the plan learns its new dependents
for _, d in ipairs(waiting_on) do
  local known = rcall('HGET', task_key(d), 'dependents')
  local added = table.concat(waiters[d], ',')
  if known and known ~= '' then added = known .. ',' .. added end
  rcall('HSET', task_key(d), 'dependents', added)
end
wake(entry, 'submitted', ids[#ids])
return done({ids = ids, available = available}, {})  -- a replay's ids are the plan's own
