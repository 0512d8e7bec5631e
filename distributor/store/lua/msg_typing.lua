--[[ msg_typing: record that a delivery job is about to type into some recipients' panes.
  KEYS[1] deliveries:<id>, KEYS[2] delivering:<id>:<host>, KEYS[3] clock
  ARGV[1] holder ('<worker> <attempt>'), ARGV[2] lease ms, ARGV[3] attempt id,
  ARGV[4] agent ids (JSON list)
  Each listed recipient that is not final (delivered, failed for good, acknowledged or
  unacknowledged) becomes `typing`, with
  the attempt id and Redis time (`typing_at`), and the lease is renewed: {'ok', {}}. A later
  job that finds `typing` knows the attempt stopped between this record and its outcome, and
  checks the pane before typing again (workers/delivery.py). If the lease is no longer
  ARGV[1]'s, nothing changes and the caller types nothing: {'lost', {holder}}.
]]
--@include messaging
local K_DELIVERIES, K_LEASE, K_CLOCK = KEYS[1], KEYS[2], KEYS[3]
local HOLDER, LEASE_MS, ATTEMPT = ARGV[1], ARGV[2], ARGV[3]
local holder = rcall('GET', K_LEASE)
if holder ~= HOLDER then return {'lost', cjson.encode({holder = holder or ''})} end
rcall('PEXPIRE', K_LEASE, LEASE_MS)
local now = int(now_ms(K_CLOCK))
for _, id in ipairs(cjson.decode(ARGV[4])) do
  local raw = rcall('HGET', K_DELIVERIES, id)
  if raw then
    local d = cjson.decode(raw)
    if d.status ~= 'delivered' and d.status ~= 'acknowledged' and d.status ~= 'unacknowledged'
        and not (d.status == 'failed' and d.final) then
      d.status, d.attempt, d.typing_at = 'typing', ATTEMPT, now
      rcall('HSET', K_DELIVERIES, id, cjson.encode(d))
    end
  end
end
return {'ok', '{}'}
