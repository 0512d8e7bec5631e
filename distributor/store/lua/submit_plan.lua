--[[ submit_plan: add a whole plan, all or nothing.
  ARGV[6]: JSON list of tasks in submission order (Python validated them and refused cycles):
           {id, title, description, files, dependencies (JSON text), deps (list), priority,
            estimated_minutes ('' if unknown), max_attempts, lease_ms, shared_files (JSON text),
            rkeys (the files as reservations take them, see include/reservations.lua)}
  Each task hash keeps `unmet` (how many dependencies are unfinished) and `dependents` (ids
  of unfinished tasks waiting on it, comma-separated), so a completion reads one field.
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

local now = now_ms()
local ids, available = {}, {}
local entry
local waiting_on, waiters = {}, {}  -- dependency id -> new dependents, in plan order
for _, t in ipairs(tasks) do
  local seq = rcall('INCR', K_SEQ)
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
  rcall('HINCRBY', K_COUNTS, status, 1)
  if status == 'available' then
    rcall('ZADD', K_READY, rank, t.id)
    available[#available + 1] = t.id
  end
  ids[#ids + 1] = t.id
  entry = record(now, 'submitted', t.id, '', {'status', status})
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
