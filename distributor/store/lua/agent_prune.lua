--[[ agent_prune: forget agents unseen for longer than the prune window, with their inboxes.
  KEYS[1] agents (sorted set, score = last seen ms), KEYS[2] clock
  ARGV[1] key prefix (agent:<id> and inbox:<id> are built from it), ARGV[2] prune window ms,
  ARGV[3] most agents pruned by one call
  Returns {'ok', {pruned = [ids]}}. Their messages' records (msg:*, deliveries:*) stay until
  they expire.
]]
--@include messaging
local K_AGENTS, K_CLOCK = KEYS[1], KEYS[2]
local PREFIX, WINDOW_MS, LIMIT = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local cutoff = now_ms(K_CLOCK) - WINDOW_MS
local ids = rcall('ZRANGEBYSCORE', K_AGENTS, '-inf', '(' .. int(cutoff), 'LIMIT', 0, LIMIT)
for _, id in ipairs(ids) do
  rcall('DEL', PREFIX .. 'agent:' .. id, PREFIX .. 'inbox:' .. id)
  rcall('ZREM', K_AGENTS, id)
end
return {'ok', cjson.encode({pruned = ids})}
