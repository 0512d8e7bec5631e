--[[ agent_remove: forget an agent (its inbox is kept until it expires by length).
  KEYS[1] agents (sorted set), KEYS[2] agent:<id> (hash)
  ARGV[1] agent id
  Returns {'ok', {}} or {'not_found', {}}.
]]
local existed = redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
if existed == 0 then return {'not_found', '{}'} end
return {'ok', '{}'}
