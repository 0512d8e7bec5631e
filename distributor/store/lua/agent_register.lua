--[[ agent_register: add an agent to the registry, or replace its address.
  KEYS[1] agents (sorted set, score = last seen ms), KEYS[2] agent:<id> (hash), KEYS[3] clock
  ARGV[1] agent id, ARGV[2] host, ARGV[3] tmux pane id ('%N'), ARGV[4] tmux socket path
  ('' = the default server), ARGV[5] capabilities (JSON list)
  Returns {'ok', {agent fields}}; the agent is seen now.
]]
--@include messaging
local K_AGENTS, K_AGENT, K_CLOCK = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms(K_CLOCK)
rcall('DEL', K_AGENT)
rcall('HSET', K_AGENT, 'id', ARGV[1], 'host', ARGV[2], 'pane', ARGV[3], 'socket', ARGV[4],
      'capabilities', ARGV[5], 'registered_at', int(now), 'last_seen', int(now))
rcall('ZADD', K_AGENTS, int(now), ARGV[1])
local flat = rcall('HGETALL', K_AGENT)
local agent = {}
for i = 1, #flat, 2 do agent[flat[i]] = flat[i + 1] end
return {'ok', cjson.encode(agent)}
