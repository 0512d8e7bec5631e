--[[ msg_outcome: record what one delivery attempt did for some recipients of a message.
  KEYS[1] deliveries:<id>, KEYS[2] clock, KEYS[3] acks
  ARGV[1] outcomes as JSON {agent id: {status = 'delivered' | 'failed' | 'typing', as, reason,
    detail, final, verified, retyped}}
    `as`: how a delivered message was typed, 'paste' or 'comment'; `verified`: a `typing`
    record was checked and the pane showed the message had arrived; `retyped`: typed by a later
    job after the pane showed the interrupted attempt had not typed it (workers/delivery.py).
    'typing' records a transient failure that may have typed (a tmux timeout): the recipient
    stays `typing`, with its attempt id, so the next attempt checks the pane before typing.
  ARGV[2] the attempt's id: an outcome of the same attempt recorded twice (the call re-sent after
  a lost reply) counts once
  ARGV[3] the message id (the member of KEYS[3])
  A recipient already `delivered`, `acknowledged` or `unacknowledged` is never changed, so a
  retried job cannot undo or repeat it.
  Each recorded outcome counts one attempt and stamps Redis time (first/last attempt, delivery).
  A recipient that must acknowledge the message and has not, once its outcome is final
  (delivered, or failed for good), gets `remind_at`: now + ack_delay * 2^reminders; KEYS[3]
  scores the message at its earliest `remind_at` (msg_remind re-delivers or gives up then).
  Returns {'ok', {recorded = n}}.
]]
--@include messaging
local K_DELIVERIES, K_CLOCK, K_ACKS = KEYS[1], KEYS[2], KEYS[3]
local ATTEMPT, MSG_ID = ARGV[2] or '', ARGV[3]
local FINAL_STATES = {delivered = true, acknowledged = true, unacknowledged = true}
local remind_at = nil
local now = int(now_ms(K_CLOCK))
local recorded = 0
for id, o in pairs(cjson.decode(ARGV[1])) do
  local raw = rcall('HGET', K_DELIVERIES, id)
  if raw then
    local d = cjson.decode(raw)
    if not FINAL_STATES[d.status] and (ATTEMPT == '' or d.recorded_by ~= ATTEMPT) then
      d.recorded_by = ATTEMPT ~= '' and ATTEMPT or nil
      d.attempts = (tonumber(d.attempts) or 0) + 1
      d.first_attempt_at = d.first_attempt_at or now
      d.last_attempt_at = now
      d.status = o.status
      d.reason, d.detail = o.reason, o.detail
      if o.status ~= 'typing' then d.attempt, d.typing_at = nil, nil end
      if o.status == 'delivered' then
        d.delivered_at = now
        d['as'] = o['as']
        d.verified, d.retyped = o.verified or nil, o.retyped or nil
        d.reason, d.final = nil, true
      elseif o.status == 'typing' then
        d.final = false
      else
        d.final = o.final
      end
      if d.ack and d.final then
        d.remind_at = int(tonumber(now) + d.ack_delay * 2 ^ (tonumber(d.reminders) or 0))
        if not remind_at or tonumber(d.remind_at) < remind_at then
          remind_at = tonumber(d.remind_at)
        end
      end
      rcall('HSET', K_DELIVERIES, id, cjson.encode(d))
      recorded = recorded + 1
    end
  end
end
if remind_at then
  local score = rcall('ZSCORE', K_ACKS, MSG_ID)
  if not score or tonumber(score) > remind_at then
    rcall('ZADD', K_ACKS, int(remind_at), MSG_ID)
  end
end
return {'ok', cjson.encode({recorded = recorded})}
