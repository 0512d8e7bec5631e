--[[ msg_remind: re-deliver, or give up on, the messages whose acknowledgement is overdue
  (each worker's sweep, workers/sweep.py; Messenger.remind).
  KEYS[1] acks, KEYS[2] clock, KEYS[3] hosts
  ARGV[1] key prefix, ARGV[2] most messages looked at
  For each message of KEYS[1] whose score (the earliest `remind_at` of its recipients) has come,
  each recipient that must acknowledge it, has not, and whose `remind_at` has come:
    * fewer than `ack_max` re-deliveries so far: back to `pending` with `reminders` + 1, and
      the message is due now in its host's outbox, so the sweep dispatches a delivery job;
    * otherwise: `unacknowledged`, final (`unacked_at` = now).
  A recipient whose host has a job delivering the message right now (its lease) is looked at
  again a second later instead, so that job's msg_finish cannot drop the outbox entry made here.
  The message is then scored at its next `remind_at`, or leaves KEYS[1] when none is left
  (recipients typed again get theirs when msg_outcome records them). Expired messages leave it.
  Returns {'ok', {reminded = {{id, agent, n}, ...}, unacknowledged = {{id, agent}, ...},
  hosts = {{id, host}, ...}}} (JSON lists).
]]
--@include messaging
local K_ACKS, K_CLOCK, K_HOSTS = KEYS[1], KEYS[2], KEYS[3]
local PREFIX, LIMIT = ARGV[1], tonumber(ARGV[2])
local BUSY_MS = 1000
local now = now_ms(K_CLOCK)
local reminded, given_up, touched = {}, {}, {}
for _, msg_id in ipairs(rcall('ZRANGEBYSCORE', K_ACKS, '-inf', int(now), 'LIMIT', 0, LIMIT)) do
  local k_deliveries = PREFIX .. 'deliveries:' .. msg_id
  if rcall('EXISTS', PREFIX .. 'msg:' .. msg_id) == 0 then
    rcall('ZREM', K_ACKS, msg_id)
  else
    local flat = rcall('HGETALL', k_deliveries)
    local next_at, hosts = nil, {}
    for i = 1, #flat, 2 do
      local agent, d = flat[i], cjson.decode(flat[i + 1])
      local waiting = d.ack and d.final and d.remind_at
        and (d.status == 'delivered' or d.status == 'failed')
      if waiting and tonumber(d.remind_at) <= now then
        local again = (tonumber(d.reminders) or 0) < (tonumber(d.ack_max) or 0)
        if again and d.host
            and rcall('EXISTS', PREFIX .. 'delivering:' .. msg_id .. ':' .. d.host) == 1 then
          -- a job delivers this message on that host now: its finish could drop the outbox
          -- entry made here, so this re-delivery waits a moment (the lease is gone by then)
          if not next_at or now + BUSY_MS < next_at then next_at = now + BUSY_MS end
        else
          if again then
            d.reminders = (tonumber(d.reminders) or 0) + 1
            d.status, d.final, d.remind_at, d.reason, d.detail = 'pending', false, nil, nil, nil
            reminded[#reminded + 1] = {msg_id, agent, d.reminders}
            if d.host and not hosts[d.host] then
              hosts[d.host] = true
              touched[#touched + 1] = {msg_id, d.host}
            end
          else
            d.status, d.remind_at, d.unacked_at = 'unacknowledged', nil, int(now)
            given_up[#given_up + 1] = {msg_id, agent}
          end
          rcall('HSET', k_deliveries, agent, cjson.encode(d))
        end
      elseif waiting then
        local at = tonumber(d.remind_at)
        if not next_at or at < next_at then next_at = at end
      end
    end
    for host in pairs(hosts) do
      rcall('ZADD', PREFIX .. 'outbox:' .. host, int(now), msg_id)
      rcall('SADD', K_HOSTS, host)
    end
    if next_at then
      rcall('ZADD', K_ACKS, int(next_at), msg_id)
    else
      rcall('ZREM', K_ACKS, msg_id)
    end
  end
end
return {'ok', cjson.encode({reminded = reminded, unacknowledged = given_up, hosts = touched})}
