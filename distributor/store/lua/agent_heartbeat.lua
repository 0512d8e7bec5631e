--[[ agent_heartbeat: the agent is alive; its presence is renewed from now.
  KEYS[1] agents (sorted set), KEYS[2] agent:<id> (hash), KEYS[3] clock
  ARGV[1] agent id
  Returns {'ok', {last_seen}} or {'not_found', {}}.
]]
--@include messaging
local K_AGENTS, K_AGENT, K_CLOCK = KEYS[1], KEYS[2], KEYS[3]
if rcall('EXISTS', K_AGENT) == 0 then return {'not_found', '{}'} end
local now = now_ms(K_CLOCK)
rcall('HSET', K_AGENT, 'last_seen', int(now))
rcall('ZADD', K_AGENTS, int(now), ARGV[1])
return {'ok', cjson.encode({last_seen = int(now)})}
