--[[ reap: recover up to ARGV[6] expired leases and due retries (the caller repeats until
  fewer come back). Returns 'ok' {expired, promoted}.
]]
--@include common
local limit = tonumber(ARGV[6])
local now = now_ms()
local expired = reap_expired(now, limit)
local promoted = promote_due(now, limit)
return done({expired = expired, promoted = promoted})
