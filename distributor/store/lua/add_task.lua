--[[ add_task: add one task to a live swarm (work discovered at runtime), all or nothing.
  ARGV[6]: JSON object: the task as submit_plan.lua takes one (id, title, description, files
           and dependencies as JSON text, deps as a list, priority, estimated_minutes ('' if
           unknown), max_attempts, lease_ms), where id '' asks for a made one ('task-<n>', n the
           swarm's submission counter, the first id free), plus
           blocks           a task that must now also wait for the new one ('' for none),
           discovered_from  the task whose work turned this one up ('' for none),
           related          JSON text of a list of related task ids, related_ids the same list,
           agent            who added it ('' if unsaid), for the event.
  Checks, writing nothing when one fails: the id is new ('duplicate' {ids}); every dependency
  exists ('unknown_dependency' {dependency}; a completed one counts as met); blocks,
  discovered_from and related exist ('unknown_link' {link, task}); blocks is not claimed, in
  progress or completed ('not_blockable' {task, status, agent}; a claim whose lease ran out
  counts as none and is expired first); no cycle ('cycle' {cycle}: the new task, each task
  depending on the next, back to the new task; only blocks with deps can close one, through
  the tasks already waiting on blocks). Or 'request_id_reused' (see common.lua).
  Then the task is stored like a submitted one (`available`, or `blocked` while a dependency is
  unfinished) with its soft links (discovered_from, related: shown, never blocking); blocks gets
  one more unmet dependency and the new id in its dependencies, and leaves `ready` (available)
  or `delayed` (waiting) as `blocked`; a failed one stays failed until retried, then blocked.
  Its `layer` (see submit_plan.lua) is 1 + its deepest dependency's (0 without any; none when a
  dependency has none); blocks, and the tasks waiting on it in turn, move down to stay below
  it. Returns 'ok' {task, unmet (its unfinished dependencies)}. The log gets one `task_added` event: status, and when set,
  dependencies, blocks and blocks_status, discovered_from, related (ids comma-separated).
]]
--@include common
local prev = replay()
if prev then return prev end

local t = cjson.decode(ARGV[6])
local new_id, target = t.id, t.blocks
if new_id ~= '' and rcall('EXISTS', task_key(new_id)) == 1 then
  return refuse('duplicate', {ids = {new_id}})
end
for _, d in ipairs(t.deps) do
  if rcall('EXISTS', task_key(d)) == 0 then return refuse('unknown_dependency', {dependency = d}) end
end
local links = {}
if t.discovered_from ~= '' then links[1] = {'discovered_from', t.discovered_from} end
for _, r in ipairs(t.related_ids) do links[#links + 1] = {'related', r} end
for _, l in ipairs(links) do
  if rcall('EXISTS', task_key(l[2])) == 0 then return refuse('unknown_link', {link = l[1], task = l[2]}) end
end

local now = now_ms()
local lapsed = false  -- blocks holds a claim whose lease ran out: expired before the change
if target ~= '' then
  local b = task_table(task_key(target))
  if not b.status then return refuse('unknown_link', {link = 'blocks', task = target}) end
  if is_active(b.status) and tonumber(b.lease_expires_at) > now then
    return refuse('not_blockable', {task = target, status = b.status, agent = b.agent_id})
  end
  if b.status == 'completed' then return refuse('not_blockable', {task = target, status = b.status}) end
  lapsed = is_active(b.status)
  -- a cycle closes when a dependency waits (directly or through others) on blocks
  local wanted = {}
  for _, d in ipairs(t.deps) do wanted[d] = true end
  local via, queue, head = {[target] = false}, {target}, 1
  local hit = wanted[target] and target or nil
  while not hit and head <= #queue do
    local current = queue[head]
    head = head + 1
    for w in string.gmatch(rcall('HGET', task_key(current), 'dependents') or '', '[^,]+') do
      if via[w] == nil then
        via[w] = current
        if wanted[w] then
          hit = w
          break
        end
        queue[#queue + 1] = w
      end
    end
  end
  if hit then
    local cycle, at = {new_id, hit}, hit
    while via[at] do
      at = via[at]
      cycle[#cycle + 1] = at
    end
    cycle[#cycle + 1] = new_id
    return refuse('cycle', {cycle = cycle})
  end
end

-- every check passed: write
if lapsed then expire(now, target) end
local seq = rcall('INCR', K_SEQ)
if new_id == '' then
  new_id = 'task-' .. seq
  while rcall('EXISTS', task_key(new_id)) == 1 do
    seq = rcall('INCR', K_SEQ)
    new_id = 'task-' .. seq
  end
end
local rank = int((1000 - t.priority) * 1099511627776 + seq)
local unmet, unmet_ids = 0, {}
for _, d in ipairs(t.deps) do
  local dkey = task_key(d)
  if rcall('HGET', dkey, 'status') ~= 'completed' then
    unmet = unmet + 1
    unmet_ids[unmet] = d
    local known = rcall('HGET', dkey, 'dependents')
    if known and known ~= '' then known = known .. ',' .. new_id else known = new_id end
    rcall('HSET', dkey, 'dependents', known)
  end
end
local layer = 0
for _, d in ipairs(t.deps) do
  local l = layer and tonumber(rcall('HGET', task_key(d), 'layer') or '')
  if not l then layer = nil elseif l >= layer then layer = l + 1 end
end
local status = 'blocked'
if unmet == 0 then status = 'available' end
local fields = {'id', new_id, 'title', t.title, 'priority', int(t.priority),
                'max_attempts', int(t.max_attempts), 'lease_ms', int(t.lease_ms),
                'status', status, 'attempts', '0', 'token', '0', 'unmet', int(unmet),
                'created_at', int(now), 'rank', rank}
for _, name in ipairs({'description', 'files', 'dependencies', 'estimated_minutes',
                       'discovered_from', 'related', 'shared_files', 'rkeys'}) do
  if t[name] ~= '' and t[name] ~= '[]' then
    fields[#fields + 1] = name
    fields[#fields + 1] = t[name]
  end
end
if target ~= '' then
  fields[#fields + 1] = 'dependents'
  fields[#fields + 1] = target
end
if layer then
  fields[#fields + 1] = 'layer'
  fields[#fields + 1] = int(layer)
end
rcall('HSET', task_key(new_id), unpack(fields))
rcall('ZADD', K_ALL, seq, new_id)
rcall('HINCRBY', K_COUNTS, status, 1)
if status == 'available' then rcall('ZADD', K_READY, rank, new_id) end

local extra = {'status', status}
if #t.deps > 0 then
  extra[#extra + 1] = 'dependencies'
  extra[#extra + 1] = table.concat(t.deps, ',')
end
if target ~= '' then
  local bkey = task_key(target)
  local b = task_table(bkey)
  local deps = cjson.decode(b.dependencies or '[]')
  deps[#deps + 1] = new_id
  rcall('HSET', bkey, 'dependencies', cjson.encode(deps))
  rcall('HINCRBY', bkey, 'unmet', 1)
  if b.status == 'available' then
    rcall('ZREM', K_READY, target)
    move(bkey, 'available', 'blocked')
  elseif b.status == 'waiting' then
    rcall('ZREM', K_DELAYED, target)
    rcall('HDEL', bkey, 'retry_at')
    move(bkey, 'waiting', 'blocked')
  end
  -- blocks now comes after the new task: it, and what waits on it, may move down a layer
  local below = {{target, layer}}
  while layer and #below > 0 do
    local id, above = below[#below][1], below[#below][2]
    below[#below] = nil
    local key = task_key(id)
    local l = tonumber(rcall('HGET', key, 'layer') or '')
    if l and l <= above then
      rcall('HSET', key, 'layer', int(above + 1))
      for w in string.gmatch(rcall('HGET', key, 'dependents') or '', '[^,]+') do
        below[#below + 1] = {w, above + 1}
      end
    end
  end
  extra[#extra + 1] = 'blocks'
  extra[#extra + 1] = target
  extra[#extra + 1] = 'blocks_status'
  extra[#extra + 1] = rcall('HGET', bkey, 'status')
end
if t.discovered_from ~= '' then
  extra[#extra + 1] = 'discovered_from'
  extra[#extra + 1] = t.discovered_from
end
if #t.related_ids > 0 then
  extra[#extra + 1] = 'related'
  extra[#extra + 1] = table.concat(t.related_ids, ',')
end
emit(now, 'task_added', new_id, t.agent, extra)
local added = task_table(task_key(new_id))
return done({task = added, unmet = unmet_ids}, {t = ref(added, 0), unmet = unmet_ids})
