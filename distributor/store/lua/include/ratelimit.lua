--[[ Sliding-window rate limit; inlined by `--@include ratelimit` (after `messaging`).
  The window is a sorted set of one sender's recent messages scored by send time (ms), so the
  limit holds across every process and host that shares the Redis, by Redis time alone.
]]

-- Milliseconds to wait before `key` accepts another message, or nil when one is allowed now.
local function rate_wait(key, now, limit, window_ms)
  rcall('ZREMRANGEBYSCORE', key, '-inf', int(now - window_ms))
  if rcall('ZCARD', key) < limit then return nil end
  local oldest = rcall('ZRANGE', key, 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window_ms - now)
end

-- Count one message (`member` must be unique, e.g. the message id) against the window.
local function rate_take(key, now, window_ms, member)
  rcall('ZADD', key, int(now), member)
  rcall('PEXPIRE', key, int(window_ms))
end
