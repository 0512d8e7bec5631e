--[[ msg_send: resolve recipients, apply the sender's rate limit, and record a message.
  KEYS[1] agents, KEYS[2] msg:<id>, KEYS[3] deliveries:<id>, KEYS[4] rate:<sender>, KEYS[5] hosts,
  KEYS[6] clock (all of one swarm; inbox:<agent>, agent:<id> and outbox:<host> keys are built
  from ARGV[1])
  ARGV[1] key prefix, ARGV[2] message id, ARGV[3] sender, ARGV[4] type, ARGV[5] content
  (already sanitized), ARGV[6] recipients as a JSON list ('' = every agent seen within the stale
  window), ARGV[7] stale window ms, ARGV[8] limit per window, ARGV[9] window ms,
  ARGV[10] inbox cap, ARGV[11] seconds the message and its outcomes are kept,
  ARGV[12] ms after which a worker's sweep checks that the delivery job exists,
  ARGV[13] the parent message id of a reply ('' = none), ARGV[14] '1' when recipients must
  acknowledge it, ARGV[15] re-deliveries before an unacknowledged recipient is given up,
  ARGV[16] ms before the first re-delivery (each later one waits twice as long),
  ARGV[17] '1' to include the sender in a broadcast to every agent (skipped by default)
  Returns {'ok', {at, recipients, hosts, thread}}, or with nothing written: {'not_found', {ids}}
  (named agents unknown), {'no_agents', {}} (nobody active), {'rate_limited', {wait_ms}},
  {'id_taken', {}} (another message has this id), {'no_parent', {}} (ARGV[13] is not
  recorded, or expired); on rate_limited only the sender's count in refused is raised.
  A reply joins its parent's thread: msg:<id> keeps `reply_to` and `thread` (the root's id), and
  thread:<root> lists the root (score 0) and the replies in the order they were sent.
  A recipient of a message to acknowledge carries `ack`, `ack_max` and `ack_delay` (ms) in its
  outcome; msg_outcome schedules its re-deliveries once it is delivered (see msg_remind).
  Every recipient starts `pending`; each host's outbox gets the message id, scored now + ARGV[12],
  until every recipient there is final (workers/sweep.py dispatches it again if its job is lost).
  Sent again with the same id and message (a reply lost on the wire, re-sent by the client's
  retry), it writes nothing and returns the first reply: one inbox entry, one rate-limit slot.
]]
--@include messaging
--@include ratelimit
local K_AGENTS, K_MSG, K_DELIVERIES, K_RATE, K_HOSTS, K_CLOCK =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local PREFIX, MSG_ID, SENDER, KIND, CONTENT = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local STALE_MS, LIMIT, WINDOW_MS = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local INBOX_CAP, TTL, GRACE_MS = ARGV[10], ARGV[11], tonumber(ARGV[12])
local PARENT, ACK, ACK_MAX, ACK_DELAY = ARGV[13], ARGV[14] == '1', ARGV[15], ARGV[16]
local INCLUDE_SELF = ARGV[17] == '1'

local sent = rcall('HMGET', K_MSG, 'sender', 'type', 'content', 'at', 'hosts')
if sent[1] then
  if sent[1] ~= SENDER or sent[2] ~= KIND or sent[3] ~= CONTENT then
    return {'id_taken', '{}'}
  end
  local ids = rcall('HKEYS', K_DELIVERIES)
  table.sort(ids)
  return {'ok', cjson.encode({at = sent[4], recipients = ids,
                              hosts = cjson.decode(sent[5]),
                              thread = rcall('HGET', K_MSG, 'thread') or ''})}
end

local root = ''
if PARENT ~= '' then
  local parent = rcall('HMGET', PREFIX .. 'msg:' .. PARENT, 'id', 'thread')
  if not parent[1] then return {'no_parent', '{}'} end
  root = parent[2] or PARENT
  if root == '' then root = PARENT end
end

local now = now_ms(K_CLOCK)
local ids
if ARGV[6] == '' then
  local active = rcall('ZRANGEBYSCORE', K_AGENTS, int(now - STALE_MS), '+inf')
  ids = {}
  for _, id in ipairs(active) do
    if INCLUDE_SELF or id ~= SENDER then ids[#ids + 1] = id end
  end
  if #ids == 0 then return {'no_agents', '{}'} end
else
  ids = cjson.decode(ARGV[6])
  local missing = {}
  for _, id in ipairs(ids) do
    if rcall('EXISTS', PREFIX .. 'agent:' .. id) == 0 then missing[#missing + 1] = id end
  end
  if #missing > 0 then return {'not_found', cjson.encode({ids = missing})} end
end

local wait = rate_wait(K_RATE, now, LIMIT, WINDOW_MS)
if wait then
  rcall('HINCRBY', PREFIX .. 'refused', SENDER, 1)  -- counted for the dashboard's /metrics
  return {'rate_limited', cjson.encode({wait_ms = int(wait)})}
end
rate_take(K_RATE, now, WINDOW_MS, MSG_ID)

local hosts, host_list = {}, {}
for _, id in ipairs(ids) do
  local a = rcall('HMGET', PREFIX .. 'agent:' .. id, 'host', 'pane', 'socket')
  local d = {status = 'pending', host = a[1], pane = a[2], socket = a[3], attempts = 0}
  if ACK then
    d.ack, d.ack_max, d.ack_delay, d.reminders = true, tonumber(ACK_MAX), tonumber(ACK_DELAY), 0
  end
  rcall('HSET', K_DELIVERIES, id, cjson.encode(d))
  rcall('XADD', PREFIX .. 'inbox:' .. id, 'MAXLEN', '~', INBOX_CAP, '*',
        'id', MSG_ID, 'sender', SENDER, 'type', KIND, 'content', CONTENT, 'at', int(now),
        'reply_to', PARENT, 'ack', ACK and '1' or '0')
  if not hosts[a[1]] then
    hosts[a[1]] = true
    host_list[#host_list + 1] = a[1]
  end
end
rcall('HSET', K_MSG, 'id', MSG_ID, 'sender', SENDER, 'type', KIND, 'content', CONTENT,
      'at', int(now), 'hosts', cjson.encode(host_list), 'ack', ACK and '1' or '0',
      'reply_to', PARENT, 'thread', root)
rcall('EXPIRE', K_MSG, TTL)
rcall('EXPIRE', K_DELIVERIES, TTL)
if root ~= '' then
  local k_thread = PREFIX .. 'thread:' .. root
  rcall('ZADD', k_thread, 0, root)
  rcall('ZADD', k_thread, rcall('ZCARD', k_thread), MSG_ID)
  rcall('EXPIRE', k_thread, TTL)
end
for _, host in ipairs(host_list) do
  rcall('ZADD', PREFIX .. 'outbox:' .. host, int(now + GRACE_MS), MSG_ID)
  rcall('SADD', K_HOSTS, host)
end
return {'ok', cjson.encode({at = int(now), recipients = ids, hosts = host_list, thread = root})}
