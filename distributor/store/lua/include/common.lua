--[[ Prelude shared by every swarmqueue script; inlined where a script says `--@include common`.

  KEYS: 1 ready, 2 delayed, 3 claimed, 4 all, 5 failed, 6 counts, 7 seq, 8 clock, 9 events
        (fixed keys of one swarm, see distributor/store/keys.py; all share the {swarm} hash tag)
  ARGV: 1 key prefix for per-task keys, 2 event stream cap, 3 request id ('' for none),
        4 the request's digest (its operation and the arguments that define it, computed by
        distributor/tasks/ops.py), 5 seconds a stored reply is kept;
        an operation's own arguments start at ARGV[6].
  Replies are {status word, JSON payload}. Times are Redis server milliseconds.
  Statuses: blocked, available, waiting (a retry backoff: in `delayed` until retry_at), claimed,
  in_progress, completed, failed; `counts` holds how many tasks are in each.
]]
local rcall = redis.call
local K_READY, K_DELAYED, K_CLAIMED, K_ALL = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_FAILED, K_COUNTS, K_SEQ, K_CLOCK, K_EVENTS = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local PREFIX, EVENT_CAP, REQUEST_ID, REQUEST_DIGEST, REQUEST_TTL =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

local function int(n) return string.format('%d', n) end

local function now_ms()
  local t = rcall('TIME')
  local offset = tonumber(rcall('GET', K_CLOCK) or '0')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + offset
end

local function task_key(id) return PREFIX .. 'task:' .. id end

-- Per-status counter changes not written yet: nil (move writes them at once) unless a script
-- that moves several tasks collects them with count_later() and writes their sum with
-- count_now() before it returns (a completion that claims the next task: 2 HINCRBY, not 6).
local pending_counts = nil

local function count_later() pending_counts = {} end

local function count_now()
  local pending, statuses = pending_counts, {}
  pending_counts = nil
  for status, n in pairs(pending) do
    if n ~= 0 then statuses[#statuses + 1] = status end
  end
  table.sort(statuses)  -- a fixed order: the same commands whatever the table's
  for _, status in ipairs(statuses) do rcall('HINCRBY', K_COUNTS, status, pending[status]) end
end

-- Change a task's status (and set any other fields given) and keep the counters exact.
local function move(tkey, from, to, ...)
  rcall('HSET', tkey, 'status', to, ...)
  if pending_counts then
    pending_counts[from] = (pending_counts[from] or 0) - 1
    pending_counts[to] = (pending_counts[to] or 0) + 1
    return
  end
  rcall('HINCRBY', K_COUNTS, from, -1)
  rcall('HINCRBY', K_COUNTS, to, 1)
end

-- Append an event to the capped stream; returns its stream id.
local function record(now, kind, id, agent, extra)
  local fields = {'type', kind, 'task', id, 'agent', agent or '', 'ts', int(now)}
  if extra then
    for i = 1, #extra do fields[#fields + 1] = extra[i] end
  end
  return rcall('XADD', K_EVENTS, 'MAXLEN', '~', EVENT_CAP, '*', unpack(fields))
end

-- Wake subscribers with "<stream id> <type> <task>" (the stream keeps the event itself),
-- once per script call: one message wakes every waiter as well as several would (a waiter
-- only tries to claim again), so a completion that claims the next task, or a claim that
-- recovers expired leases first, publishes its first event only. Every script emits a
-- waking event first if it emits one at all (WAKE_TYPES in distributor/tasks/waiting.py).
local woken = false
local function wake(entry, kind, id)
  if woken then return end
  woken = true
  rcall('SPUBLISH', K_EVENTS, entry .. ' ' .. kind .. ' ' .. id)
end

-- Record an event and wake subscribers.
local function emit(now, kind, id, agent, extra)
  local entry = record(now, kind, id, agent, extra)
  wake(entry, kind, id)
  return entry
end

local function task_table(tkey)
  local flat = rcall('HGETALL', tkey)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

--@include reservations

--[[ Idempotency. A reply that changed state is stored under its request id as
  <digest><compact reply JSON>, so the same request sent again (a client's retry through an
  outage, an agent re-running a command) gets the same reply; the same id with another
  operation or other arguments (another plan, another agent's claim) has another digest and is
  refused with 'request_id_reused', changing nothing. It is kept REQUEST_TTL seconds: as long as
  the client's retries (and a CLI re-run) may come to ask for it.

  Compact: a task in a stored reply is a reference, {id, then the first n of REF_FIELDS} as the
  request left them (false: the field was absent), not the whole task table; a replay reads the
  task again and puts those fields back over what it reads. So a replay answers with the same
  ids, token, status and times, and the task's other fields (title, description...) as they are
  now. A completion with its next claim is ~100 bytes instead of ~1 KB. ]]
local REF_FIELDS = {'status', 'agent_id', 'token', 'claimed_at', 'lease_expires_at',
                    'started_at', 'attempts', 'retry_at'}
local GRANT = 5  -- what a claim set: status, agent, token, claimed_at, lease_expires_at
-- a stored reply names its task, next task and unblocked list with one letter (t, n, u)
local STORED_NAMES = {task = 't', next = 'n', unblocked = 'u'}

local function ref(t, n)
  local r = {t.id}
  for i = 1, n do r[i + 1] = t[REF_FIELDS[i]] or false end
  return r
end

local function request_key() return PREFIX .. 'req:' .. REQUEST_ID end

-- Return the reply `payload`; when the request has an id, keep `compact` (its stored form:
-- tasks as refs, under the names of STORED_NAMES; scripts without request ids pass none).
local function done(payload, compact)
  if REQUEST_ID ~= '' then
    rcall('SET', request_key(), REQUEST_DIGEST .. cjson.encode(compact), 'EX', REQUEST_TTL)
  end
  return {'ok', cjson.encode(payload)}
end

local function refuse(status, payload)
  return {status, cjson.encode(payload or {})}
end

-- A task of a stored reply as a whole table again (nil when the task is gone).
local function expand(r)
  local t = task_table(task_key(r[1]))
  if not t.id then return nil end
  for i = 2, #r do
    local v = r[i]
    if v == false then v = nil end
    t[REF_FIELDS[i - 1]] = v
  end
  return t
end

-- The stored reply when this request was answered before, a refusal when its id answered a
-- different request, else nil (go ahead).
local function replay()
  if REQUEST_ID == '' then return nil end
  local stored = rcall('GET', request_key())
  if not stored then return nil end
  local n = #REQUEST_DIGEST
  if string.sub(stored, 1, n) ~= REQUEST_DIGEST then return refuse('request_id_reused') end
  local body = cjson.decode(string.sub(stored, n + 1))
  for name, short in pairs(STORED_NAMES) do
    if body[short] ~= nil then body[name], body[short] = body[short], nil end
  end
  for _, name in ipairs({'task', 'next'}) do
    local r = body[name]
    if type(r) == 'table' and r[1] then  -- a ref (a reply stored whole by an older version: as is)
      body[name] = expand(r)
      if not body[name] then return refuse('not_found') end
    end
  end
  return {'ok', cjson.encode(body)}
end

local function is_active(status) return status == 'claimed' or status == 'in_progress' end

-- Nil and the task's fields when agent/token hold its live claim, else the refusal to return.
local function check_holder(tkey, agent, token)
  local t = task_table(tkey)
  if not t.status then return refuse('not_found') end
  if not is_active(t.status) then return refuse('stale', {task = t, detail = 'task is ' .. t.status}) end
  if t.agent_id ~= agent then return refuse('stale', {task = t, detail = 'held by another agent'}) end
  if t.token ~= token then return refuse('stale', {task = t, detail = 'token ' .. token .. ' is not current'}) end
  return nil, t
end

-- Forget who held a task (its claim ended without completion: `why`) and free its files.
local function clear_claim(tkey, id, why, now)
  free_task_files(tkey, id, why or 'ended', now)
  rcall('ZREM', K_CLAIMED, id)
  rcall('HDEL', tkey, 'agent_id', 'claimed_at', 'started_at', 'lease_expires_at', 'lease_ms_claim')
end

-- `rank`: the task's rank when the caller read it already.
local function make_available(tkey, id, from, rank)
  move(tkey, from, 'available')
  rcall('ZADD', K_READY, rank or rcall('HGET', tkey, 'rank'), id)
end

local function give_up(now, tkey, id, from, reason)
  move(tkey, from, 'failed')
  rcall('ZREM', K_READY, id)
  rcall('ZREM', K_DELAYED, id)
  rcall('SADD', K_FAILED, id)
  rcall('HSET', tkey, 'failed_at', int(now), 'last_error', reason)
  rcall('HDEL', tkey, 'retry_at')
end

-- Return an expired claim to `available` (or `failed` once its attempts are used up).
local function expire(now, id)
  local tkey = task_key(id)
  local t = task_table(tkey)
  clear_claim(tkey, id, 'expired', now)
  local attempts, max = tonumber(t.attempts), tonumber(t.max_attempts)
  if attempts >= max then
    give_up(now, tkey, id, t.status, 'lease expired on attempt ' .. attempts .. ' of ' .. max)
    emit(now, 'expired', id, t.agent_id, {'attempts', t.attempts, 'final', '1'})
  else
    make_available(tkey, id, t.status)
    emit(now, 'expired', id, t.agent_id, {'attempts', t.attempts})
  end
end

local function reap_expired(now, limit)
  local ids = rcall('ZRANGEBYSCORE', K_CLAIMED, '-inf', int(now), 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do expire(now, id) end
  return #ids
end

-- A waiting task's retry backoff is over: it becomes available (no event: the `failed` event
-- that scheduled the retry names retry_at, and reads already show it available from then on).
local function promote(id)
  local tkey = task_key(id)
  rcall('ZREM', K_DELAYED, id)
  rcall('HDEL', tkey, 'retry_at')
  make_available(tkey, id, 'waiting')
end

-- Make up to `limit` waiting tasks whose retry time has come available.
local function promote_due(now, limit)
  local ids = rcall('ZRANGEBYSCORE', K_DELAYED, '-inf', int(now), 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do promote(id) end
  return #ids
end

-- Hand an available task to `agent` with a fresh fencing token and lease; returns the task.
-- `popped` says the caller already took it off `ready`.
-- The task is read once and the reply is that table with what the grant wrote.
local function grant(now, id, agent, lease_override, popped)
  local tkey = task_key(id)
  local t = task_table(tkey)
  local lease = tonumber(lease_override ~= '' and lease_override or t.lease_ms)
  local token = int((tonumber(t.token) or 0) + 1)
  local attempts = int((tonumber(t.attempts) or 0) + 1)
  local expires = now + lease
  if t.started_at then
    rcall('HDEL', tkey, 'started_at')
    t.started_at = nil
  end
  if not popped then rcall('ZREM', K_READY, id) end
  rcall('ZADD', K_CLAIMED, int(expires), id)
  local set = {agent_id = agent, claimed_at = int(now), lease_expires_at = int(expires),
               lease_ms_claim = int(lease), token = token, attempts = attempts}
  move(tkey, 'available', 'claimed', 'agent_id', set.agent_id, 'claimed_at', set.claimed_at,
       'lease_expires_at', set.lease_expires_at, 'lease_ms_claim', set.lease_ms_claim,
       'token', token, 'attempts', attempts)
  t.status = 'claimed'
  for k, v in pairs(set) do t[k] = v end
  emit(now, 'claimed', id, agent, {'token', token})
  take_task_files(now, id, tkey, agent, expires, t.rkeys or '')
  return t
end

-- The best ready task whose files `agent` may take, taken off `ready`; else nil and the
-- holders that kept the first `scan` ready tasks (the tasks passed over keep their place).
-- Without live reservations this is one ZPOPMIN. Beyond `scan` tasks nothing is looked at:
-- the claim answers as if every task conflicted (README: "File reservations").
local function pick_ready(now, agent, scan, limit)
  local held, skipped, seen = {}, {}, {}
  local function note_skips()  -- one `reserve-refused` event per claim that passed tasks over
    if #skipped > 0 then
      record(now, 'reserve-refused', skipped[1], agent,
             {'skipped', cjson.encode(skipped), 'holders', cjson.encode(holders_json(held))})
    end
  end
  if rcall('ZCARD', R_EXP) == 0 then
    local popped = rcall('ZPOPMIN', K_READY)
    if #popped > 0 then return popped[1] end
    return nil
  end
  purge_expired(now, limit)
  for _, id in ipairs(rcall('ZRANGE', K_READY, 0, scan - 1)) do
    local found = task_conflicts(now, id, task_key(id), agent)
    if #found == 0 then
      rcall('ZREM', K_READY, id)
      note_skips()
      return id
    end
    skipped[#skipped + 1] = id
    for _, r in ipairs(found) do
      if not seen[r.id] then
        seen[r.id] = true
        held[#held + 1] = r
      end
    end
  end
  note_skips()
  return nil, held, skipped
end

-- Claim the best ready task (priority, then age) whose files are free for `agent`, after
-- recovering up to `limit` expired leases and due retries. Returns the task, or nil, the
-- earliest ms at which a retry backoff, a lease or a holding reservation ends (nil when none),
-- so a waiting client knows when to look again, and the holders that kept ready tasks.
local function claim_best(now, agent, lease_override, limit, scan)
  reap_expired(now, limit)
  promote_due(now, limit)
  local id, held, skipped = pick_ready(now, agent, tonumber(scan) or 64, limit)
  if id then return grant(now, id, agent, lease_override, true), nil end
  local next_due = nil
  for _, r in ipairs(held or {}) do
    if next_due == nil or r.x < next_due then next_due = r.x end
  end
  for _, key in ipairs({K_DELAYED, K_CLAIMED}) do
    local head = rcall('ZRANGE', key, 0, 0, 'WITHSCORES')
    if #head > 0 and (next_due == nil or tonumber(head[2]) < next_due) then
      next_due = tonumber(head[2])
    end
  end
  return nil, next_due, held, skipped
end
