--[[ reap: recover up to ARGV[5] expired leases and due retries (the caller repeats until
  fewer come back). Returns 'ok' {expired, promoted}.
]]
local OP = 'reap'
--@include common
local limit = tonumber(ARGV[5])
local now = now_ms()
local expired = reap_expired(now, limit)
local promoted = promote_due(now, limit)
return done({expired = expired, promoted = promoted})
