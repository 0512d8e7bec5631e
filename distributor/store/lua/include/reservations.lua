--[[ File reservations, inlined into common.lua (distributor/reservations/patterns.py has the
  rules and the Python twin of `overlap`). A reservation lets one agent edit the paths a
  pattern covers; exclusive ones conflict with any overlapping reservation of another agent,
  shared ones only with exclusive ones.

  Keys (after the swarm's prefix):
    resv:all         hash  rid -> JSON {a agent, k kind ('p' path | 'g' glob), p key (folded
                           path, or a glob's literal prefix), s shared 0/1, t task ('' for an
                           explicit one), d the pattern (normalised), r reason, c created ms}
    resv:exp         zset  rid -> expiry ms (Redis time); a task's expire with its lease
    resv:at:<node>   set   rids filed at node: a path at itself, a glob at the directory of
                           its prefix ('' is the root)
    resv:sub:<node>  set   rids filed strictly under node
  A pattern can only overlap reservations filed at its own node, at a directory above it or
  under it, so a check reads (segments + 2) small sets per path, however many reservations
  live elsewhere. A task's reservations are the rids 't:<task>:<i>' for the i-th entry of its
  `rkeys` field (JSON list of [kind, key, shared, pattern], computed at submit); an explicit
  one is 'a:<agent>:<pattern>', so reserving the same pattern again renews it.
]]
local R_ALL, R_EXP = PREFIX .. 'resv:all', PREFIX .. 'resv:exp'
local function r_at(node) return PREFIX .. 'resv:at:' .. node end
local function r_sub(node) return PREFIX .. 'resv:sub:' .. node end

local function starts(s, p) return string.sub(s, 1, #p) == p end

-- Whether two patterns (kind, key) could match one same path.
local function overlap(k1, p1, k2, p2)
  if k1 == 'p' and k2 == 'p' then
    return p1 == p2 or starts(p1, p2 .. '/') or starts(p2, p1 .. '/')
  end
  if k1 == 'g' and k2 == 'g' then return starts(p1, p2) or starts(p2, p1) end
  if k1 == 'g' then p1, p2 = p2, p1 end  -- p1: the path, p2: the glob's prefix
  return starts(p1, p2) or starts(p2, p1 .. '/')
end

local function node_of(kind, key)
  if kind == 'p' then return key end
  local cut = 0
  for i = #key, 1, -1 do
    if string.byte(key, i) == 47 then cut = i break end  -- '/'
  end
  if cut == 0 then return '' end
  return string.sub(key, 1, cut - 1)
end

-- The directories above a node, the root '' first.
local function ancestors(node)
  if node == '' then return {} end
  local out, pos = {''}, 1
  while true do
    local i = string.find(node, '/', pos, true)
    if not i then return out end
    out[#out + 1] = string.sub(node, 1, i - 1)
    pos = i + 1
  end
end

local function index(cmd, rid, node)
  rcall(cmd, r_at(node), rid)
  for _, a in ipairs(ancestors(node)) do rcall(cmd, r_sub(a), rid) end
end

local function put_resv(rid, rec, expires)
  rcall('HSET', R_ALL, rid, cjson.encode(rec))
  rcall('ZADD', R_EXP, int(expires), rid)
  index('SADD', rid, node_of(rec.k, rec.p))
end

-- Remove a reservation; returns its record (nil when there was none).
local function drop_resv(rid)
  local raw = rcall('HGET', R_ALL, rid)
  if not raw then return nil end
  local rec = cjson.decode(raw)
  rcall('HDEL', R_ALL, rid)
  rcall('ZREM', R_EXP, rid)
  index('SREM', rid, node_of(rec.k, rec.p))
  rec.id = rid
  return rec
end

-- Append to `out` the live reservations of other agents that conflict with pattern
-- (kind, key, shared) wanted by `agent` for `task` ('' explicit); `seen` holds the rids
-- already in `out` (one holder is named once). Each holder comes back as its record with
-- `id` and `x` (expiry ms).
local function conflicts(now, agent, task, kind, key, shared, out, seen)
  local node = node_of(kind, key)
  local lists = {rcall('SMEMBERS', r_at(node)), rcall('SMEMBERS', r_sub(node))}
  for _, a in ipairs(ancestors(node)) do lists[#lists + 1] = rcall('SMEMBERS', r_at(a)) end
  for _, rids in ipairs(lists) do
    for _, rid in ipairs(rids) do
      local raw = not seen[rid] and rcall('HGET', R_ALL, rid)
      if raw then
        local r = cjson.decode(raw)
        if r.a ~= agent and (task == '' or r.t ~= task) and not (shared and r.s == 1)
            and overlap(kind, key, r.k, r.p) then
          local x = tonumber(rcall('ZSCORE', R_EXP, rid))
          if x and x > now then
            seen[rid] = true
            r.id, r.x = rid, x
            out[#out + 1] = r
          end
        end
      end
    end
  end
end

-- A task's reservation entries (nil when it has none); `raw`: its `rkeys` field when the
-- caller read the task already ('' for none), so it is not read again.
local function task_entries(tkey, raw)
  if raw == nil then raw = rcall('HGET', tkey, 'rkeys') end
  if not raw or raw == '' then return nil end
  return cjson.decode(raw)
end

-- The live reservations of other agents that keep `agent` from taking task `id`'s files.
local function task_conflicts(now, id, tkey, agent)
  local out = {}
  local entries = task_entries(tkey)
  if not entries then return out end
  local seen = {}
  for _, e in ipairs(entries) do conflicts(now, agent, id, e[1], e[2], e[3] == 1, out, seen) end
  return out
end

-- Holders as replies and events name them: {id, a agent, d pattern, s shared, x until ms,
-- t task ('' explicit), r reason}.
local function holders_json(found)
  local list = {}
  for _, r in ipairs(found) do
    list[#list + 1] = {id = r.id, a = r.a, d = r.d, s = r.s, x = r.x, t = r.t, r = r.r}
  end
  return list
end

-- Reserve a claimed task's files for `agent` until `expires`; records a `reserved` event.
local function take_task_files(now, id, tkey, agent, expires, rkeys)
  local entries = task_entries(tkey, rkeys)
  if not entries then return end
  local taken = {}
  for i, e in ipairs(entries) do
    local rid = 't:' .. id .. ':' .. i
    put_resv(rid, {a = agent, k = e[1], p = e[2], s = e[3], t = id, d = e[4], r = '', c = now},
             expires)
    taken[#taken + 1] = {rid, e[4], e[3]}
  end
  record(now, 'reserved', id, agent, {'reservations', cjson.encode(taken), 'until', int(expires)})
end

-- Free a task's reservations (its claim ended: `why`, at `now`, Redis time when not given);
-- records an `unreserved` event. `rkeys`: see task_entries.
local function free_task_files(tkey, id, why, now, rkeys)
  local entries = task_entries(tkey, rkeys)
  if not entries then return end
  local freed, agent = {}, ''
  for i = 1, #entries do
    local rec = drop_resv('t:' .. id .. ':' .. i)
    if rec then
      freed[#freed + 1] = rec.id
      agent = rec.a
    end
  end
  if #freed > 0 then
    record(now or now_ms(), 'unreserved', id, agent, {'ids', cjson.encode(freed), 'reason', why})
  end
end

-- A heartbeat (or start) renewed the task's lease: its reservations last as long.
local function extend_task_files(tkey, id, expires, rkeys)
  local entries = task_entries(tkey, rkeys)
  if not entries then return end
  for i = 1, #entries do rcall('ZADD', R_EXP, 'XX', int(expires), 't:' .. id .. ':' .. i) end
end

-- Drop up to `limit` explicit reservations whose time is up (a task's end with its lease, in
-- `expire`), each with an `unreserved` event.
local function purge_expired(now, limit)
  local rids = rcall('ZRANGEBYSCORE', R_EXP, '-inf', int(now), 'LIMIT', 0, limit)
  for _, rid in ipairs(rids) do
    if string.sub(rid, 1, 2) == 'a:' then
      local rec = drop_resv(rid)
      if rec then
        record(now, 'unreserved', '', rec.a, {'ids', cjson.encode({rid}), 'reason', 'expired'})
      end
    end
  end
end
