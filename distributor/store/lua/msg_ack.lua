--[[ msg_ack: a recipient acknowledges a message (`swarmqueue ack`, Messenger.acknowledge).
  KEYS[1] msg:<id>, KEYS[2] deliveries:<id>, KEYS[3] clock
  ARGV[1] the acknowledging agent's id
  Returns, changing nothing but the recipient's outcome:
  {'ok', {acked_at, late}}      the outcome is now `acknowledged` (final) at Redis time;
                                `late`: it had been given up (`unacknowledged`) before
  {'already', {acked_at}}       acknowledged before: nothing changes (acknowledging is
                                idempotent; the first time is kept)
  {'not_found', {}}             no such message (or it expired)
  {'not_recipient', {}}         the message was not sent to ARGV[1]
  Any recipient may acknowledge any message it received, whether or not the sender asked for
  it; a pending delivery acknowledged from the inbox is not typed any more (it is final).
]]
--@include messaging
local K_MSG, K_DELIVERIES, K_CLOCK = KEYS[1], KEYS[2], KEYS[3]
local AGENT = ARGV[1]
if rcall('EXISTS', K_MSG) == 0 then return {'not_found', '{}'} end
local raw = rcall('HGET', K_DELIVERIES, AGENT)
if not raw then return {'not_recipient', '{}'} end
local d = cjson.decode(raw)
if d.status == 'acknowledged' then
  return {'already', cjson.encode({acked_at = d.acked_at})}
end
local now = int(now_ms(K_CLOCK))
local late = d.status == 'unacknowledged'
d.status, d.acked_at, d.final, d.remind_at = 'acknowledged', now, true, nil
d.attempt, d.typing_at = nil, nil
if late then d.late = true end
rcall('HSET', K_DELIVERIES, AGENT, cjson.encode(d))
return {'ok', cjson.encode({acked_at = now, late = late})}
