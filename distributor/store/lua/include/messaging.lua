--[[ Prelude of the agent-registry and messaging scripts; inlined by `--@include messaging`.
  Defines `rcall`, `int` and `now_ms(clock_key)`: Redis server milliseconds plus the swarm's
  `clock` offset (set only by tests and simulations), the same clock as the task scripts.
]]
local rcall = redis.call

local function int(n) return string.format('%d', n) end

local function now_ms(clock_key)
  local t = rcall('TIME')
  local offset = tonumber(rcall('GET', clock_key) or '0')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + offset
end
