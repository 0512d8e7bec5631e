--[[ msg_outcome: record what one delivery attempt did for some recipients of a message.
  KEYS[1] deliveries:<id>, KEYS[2] clock
  ARGV[1] outcomes as JSON {agent id: {status = 'delivered' | 'failed' | 'typing', as, reason,
    detail, final, verified, retyped}}
    `as`: how a delivered message was typed, 'paste' or 'comment'; `verified`: a `typing`
    record was checked and the pane showed the message had arrived; `retyped`: typed by a later
    job after the pane showed the interrupted attempt had not typed it (workers/delivery.py).
    'typing' records a transient failure that may have typed (a tmux timeout): the recipient
    stays `typing`, with its attempt id, so the next attempt checks the pane before typing.
  ARGV[2] the attempt's id: an outcome of the same attempt recorded twice (the call re-sent after
  a lost reply) counts once
  A recipient already `delivered` is never changed, so a retried job cannot undo or repeat it.
  Each recorded outcome counts one attempt and stamps Redis time (first/last attempt, delivery).
  Returns {'ok', {recorded = n}}.
]]
--@include messaging
local K_DELIVERIES, K_CLOCK = KEYS[1], KEYS[2]
local ATTEMPT = ARGV[2] or ''
local now = int(now_ms(K_CLOCK))
local recorded = 0
for id, o in pairs(cjson.decode(ARGV[1])) do
  local raw = rcall('HGET', K_DELIVERIES, id)
  if raw then
    local d = cjson.decode(raw)
    if d.status ~= 'delivered' and (ATTEMPT == '' or d.recorded_by ~= ATTEMPT) then
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
      rcall('HSET', K_DELIVERIES, id, cjson.encode(d))
      recorded = recorded + 1
    end
  end
end
return {'ok', cjson.encode({recorded = recorded})}
