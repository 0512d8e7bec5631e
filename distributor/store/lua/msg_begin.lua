--[[ msg_begin: a delivery job takes the lease of one message's delivery on one host.
  KEYS[1] msg:<id>, KEYS[2] delivering:<id>:<host>, KEYS[3] outbox:<host>, KEYS[4] clock
  ARGV[1] message id, ARGV[2] holder ('<worker> <attempt>'), ARGV[3] lease ms
  Returns {'ok', {now}} with the lease held by ARGV[2] for ARGV[3] ms (the worker renews it
  while the job runs; a killed worker's lease runs out by Redis time), or, changing nothing:
  {'busy', {holder}} another job holds the lease (only one job types a message at a time),
  {'done', {}} the message is not in the host's outbox (every recipient there is final),
  {'gone', {}} the message expired (its outbox entry is dropped).
]]
--@include messaging
local K_MSG, K_LEASE, K_OUTBOX, K_CLOCK = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local MSG_ID, HOLDER, LEASE_MS = ARGV[1], ARGV[2], ARGV[3]
if rcall('EXISTS', K_MSG) == 0 then
  rcall('ZREM', K_OUTBOX, MSG_ID)
  return {'gone', '{}'}
end
if not rcall('ZSCORE', K_OUTBOX, MSG_ID) then return {'done', '{}'} end
local holder = rcall('GET', K_LEASE)
if holder and holder ~= HOLDER then return {'busy', cjson.encode({holder = holder})} end
rcall('SET', K_LEASE, HOLDER, 'PX', LEASE_MS)
return {'ok', cjson.encode({now = int(now_ms(K_CLOCK))})}
