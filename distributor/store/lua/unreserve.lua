--[[ unreserve: an agent frees its explicit reservations (a task's end with its claim).
  ARGV[6] agent id, ARGV[7] JSON list of patterns as normalised by Python ([] = all of the
  agent's explicit reservations).
  Returns 'ok' {freed: [rid...]} (patterns it did not hold are left out) with one
  `unreserved` event, or 'request_id_reused'.
]]
--@include common
local prev = replay()
if prev then return prev end

local agent, patterns = ARGV[6], cjson.decode(ARGV[7])
local mine = 'a:' .. agent .. ':'
local rids = {}
if #patterns == 0 then
  for _, rid in ipairs(rcall('ZRANGE', R_EXP, 0, -1)) do
    if starts(rid, mine) then rids[#rids + 1] = rid end
  end
else
  for _, p in ipairs(patterns) do rids[#rids + 1] = mine .. p end
end
local freed = {}
for _, rid in ipairs(rids) do
  if drop_resv(rid) then freed[#freed + 1] = rid end
end
if #freed > 0 then
  emit(now_ms(), 'unreserved', '', agent, {'ids', cjson.encode(freed), 'reason', 'unreserved'})
end
return done({freed = freed}, {freed = freed})
