--[[ submit_plan: add a whole plan, all or nothing.
  ARGV[6]: JSON list of tasks in submission order (Python validated them and refused cycles):
           {id, title, description, files, dependencies (JSON text), deps (list), priority,
            estimated_minutes ('' if unknown), max_attempts, lease_ms, shared_files (JSON text),
            rkeys (the files as reservations take them, see include/reservations.lua)}
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
local in_plan = {}
for _, t in ipairs(tasks) do in_plan[t.id] = true end

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

local now = now_ms()
local ids, available = {}, {}
local entry
local waiting_on, waiters = {}, {}  -- dependency id -> new dependents, in plan order
local first_seq = rcall('INCRBY', K_SEQ, #tasks) - #tasks
local added = {blocked = 0, available = 0}
for i, t in ipairs(tasks) do
  local seq = first_seq + i
  local rank = int((1000 - t.priority) * 1099511627776 + seq)
  local unmet = 0
  for _, d in ipairs(t.deps) do
    if in_plan[d] or rcall('HGET', task_key(d), 'status') ~= 'completed' then
      unmet = unmet + 1
      if not waiters[d] then
        waiters[d] = {}
        waiting_on[#waiting_on + 1] = d
      end
      table.insert(waiters[d], t.id)
    end
  end
  local status = 'blocked'
  if unmet == 0 then status = 'available' end
  local fields = {'id', t.id, 'title', t.title, 'priority', int(t.priority),
                  'max_attempts', int(t.max_attempts), 'lease_ms', int(t.lease_ms),
                  'status', status, 'attempts', '0', 'token', '0', 'unmet', int(unmet),
                  'created_at', int(now), 'rank', rank}
  if layer_of[t.id] then
    fields[#fields + 1] = 'layer'
    fields[#fields + 1] = int(layer_of[t.id])
  end
  -- optional fields are left out when empty (smaller hashes; readers default them)
  for _, name in ipairs({'description', 'files', 'dependencies', 'estimated_minutes',
                        'shared_files', 'rkeys'}) do
    if t[name] ~= '' and t[name] ~= '[]' then
      fields[#fields + 1] = name
      fields[#fields + 1] = t[name]
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
-- each unfinished dependency learns its new dependents (a comma list in its hash)
for _, d in ipairs(waiting_on) do
  local known = rcall('HGET', task_key(d), 'dependents')
  local added = table.concat(waiters[d], ',')
  if known and known ~= '' then added = known .. ',' .. added end
  rcall('HSET', task_key(d), 'dependents', added)
end
wake(entry, 'submitted', ids[#ids])
return done({ids = ids, available = available}, {})  -- a replay's ids are the plan's own
