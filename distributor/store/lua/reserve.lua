--[[ reserve: an agent reserves paths for work outside a task (or beside its claim).
  ARGV[6] agent id, ARGV[7] JSON list of [kind, key, shared 0/1, pattern] (normalised by
  Python), ARGV[8] time to live ms, ARGV[9] reason, ARGV[10] expired reservations dropped
  first (at most).
  All or nothing: when a live reservation of another agent conflicts with any of them, nothing
  is written, a `reserve-refused` event names the holders, and the reply is
  'conflict' {holders} (see holders_json in include/reservations.lua). Reserving a pattern
  the agent already holds renews it (new expiry, mode and reason).
  Returns 'ok' {reservations: [{id, a, d, s, x, t, r}...]}, or 'request_id_reused'.
]]
--@include common
local prev = replay()
if prev then return prev end

local agent, entries, ttl, reason = ARGV[6], cjson.decode(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local now = now_ms()
purge_expired(now, tonumber(ARGV[10]))
local held, seen = {}, {}
for _, e in ipairs(entries) do conflicts(now, agent, '', e[1], e[2], e[3] == 1, held, seen) end
if #held > 0 then
  local holders = holders_json(held)
  record(now, 'reserve-refused', '', agent, {'holders', cjson.encode(holders)})
  return refuse('conflict', {holders = holders})
end
local expires = now + ttl
local taken, reply = {}, {}
for _, e in ipairs(entries) do
  local rid = 'a:' .. agent .. ':' .. e[4]
  drop_resv(rid)
  local rec = {a = agent, k = e[1], p = e[2], s = e[3], t = '', d = e[4], r = reason, c = now}
  put_resv(rid, rec, expires)
  taken[#taken + 1] = {rid, e[4], e[3]}
  reply[#reply + 1] = {id = rid, a = agent, d = e[4], s = e[3], x = expires, t = '', r = reason,
                       c = now}
end
emit(now, 'reserved', '', agent,
     {'reservations', cjson.encode(taken), 'until', int(expires), 'reason', reason})
return done({reservations = reply}, {reservations = reply})
