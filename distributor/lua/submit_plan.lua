--[[ submit_plan: add a whole plan, all or nothing.
  ARGV[5]: JSON list of tasks in submission order (Python validated them and refused cycles):
           {id, title, description, files, dependencies (JSON text), deps (list), priority,
            estimated_minutes ('' if unknown), max_attempts, lease_ms}
  Refuses, writing nothing: 'duplicate' {ids} when an id already exists in the swarm;
  'unknown_dependency' {task, dependency} when a dependency is neither in the plan nor the swarm.
  Returns 'ok' {ids, available}; one `submitted` event.
]]
local OP = 'submit'
--@include common
local prev = replay()
if prev then return prev end

local tasks = cjson.decode(ARGV[5])
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

local now = now_ms()
local ids, available = {}, {}
for _, t in ipairs(tasks) do
  local seq = rcall('INCR', K_SEQ)
  local rank = int((1000 - t.priority) * 1099511627776 + seq)
  local unmet = 0
  for _, d in ipairs(t.deps) do
    rcall('SADD', dependents_key(d), t.id)
    if in_plan[d] or rcall('HGET', task_key(d), 'status') ~= 'completed' then
      rcall('SADD', deps_key(t.id), d)
      unmet = unmet + 1
    end
  end
  local status = 'blocked'
  if unmet == 0 then status = 'available' end
  rcall('HSET', task_key(t.id), 'id', t.id, 'title', t.title, 'description', t.description,
        'files', t.files, 'dependencies', t.dependencies, 'priority', int(t.priority),
        'estimated_minutes', t.estimated_minutes, 'max_attempts', int(t.max_attempts),
        'lease_ms', int(t.lease_ms), 'status', status, 'attempts', '0', 'token', '0',
        'created_at', int(now), 'rank', rank, 'seq', int(seq))
  rcall('ZADD', K_ALL, seq, t.id)
  rcall('HINCRBY', K_COUNTS, status, 1)
  if status == 'available' then
    rcall('ZADD', K_READY, rank, t.id)
    available[#available + 1] = t.id
  end
  ids[#ids + 1] = t.id
end
emit(now, 'submitted', ids[1], '', {'tasks', int(#ids), 'available', int(#available)})
return done({ids = ids, available = available})
