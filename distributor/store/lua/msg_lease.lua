--[[ msg_lease: renew a delivery job's lease while the job runs (the worker's keeper thread).
  KEYS[1] delivering:<id>:<host>
  ARGV[1] holder ('<worker> <attempt>'), ARGV[2] lease ms
  Returns {'ok', {}} renewed for ARGV[2] ms, or {'lost', {holder}} when the lease ran out or
  another job holds it (nothing changes; the job types nothing more, see msg_typing).
]]
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] then return {'lost', cjson.encode({holder = holder or ''})} end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'ok', '{}'}
