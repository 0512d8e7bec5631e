--[[ msg_finish: a delivery job is done with one message on one host.
  KEYS[1] delivering:<id>:<host>, KEYS[2] outbox:<host>, KEYS[3] clock
  ARGV[1] message id, ARGV[2] holder ('<worker> <attempt>'), ARGV[3] ms until a worker's
  sweep dispatches the message again (a transient failure's retry), '' when every recipient on
  the host is final
  Releases the lease and drops the message from the outbox, or scores it now + ARGV[3]:
  {'ok', {}}. If another job holds the lease by now (this one's ran out), changes nothing:
  {'busy', {holder}}; that job finishes the delivery.
]]
--@include messaging
local K_LEASE, K_OUTBOX, K_CLOCK = KEYS[1], KEYS[2], KEYS[3]
local MSG_ID, HOLDER, RETRY_MS = ARGV[1], ARGV[2], ARGV[3]
local holder = rcall('GET', K_LEASE)
if holder and holder ~= HOLDER then return {'busy', cjson.encode({holder = holder})} end
if holder then rcall('DEL', K_LEASE) end
if RETRY_MS == '' then
  rcall('ZREM', K_OUTBOX, MSG_ID)
else
  rcall('ZADD', K_OUTBOX, 'XX', int(now_ms(K_CLOCK) + tonumber(RETRY_MS)), MSG_ID)
end
return {'ok', '{}'}
