--[[ msg_redispatch: decide, atomically, what to do about one message's delivery on one host
  whose RQ job the caller has just looked at (workers/sweep.py, `swarmqueue redispatch`).
  KEYS[1] msg:<id>, KEYS[2] delivering:<id>:<host>, KEYS[3] outbox:<host>, KEYS[4] clock
  ARGV[1] message id, ARGV[2] host, ARGV[3] the job id the caller looked at ('' = the first
  job, which msg:<id> does not name), ARGV[4] what the caller saw: 'queued' (the job waits in
  its queue) or 'dead' (missing, finished, failed, or popped or started by a worker without
  the lease), ARGV[5] the first job's id (replacements are named ARGV[5]-<n>),
  ARGV[6] ms before a queued job is looked at again, ARGV[7] ms before a replacement is
  looked at (time to start), ARGV[8] '1' to act only if the outbox entry is due (the sweep)
  Returns, with the outbox score updated as said:
  {'gone', {}}         the message expired; its outbox entry is dropped
  {'finished', {}}     not in the outbox: every recipient on the host is final
  {'not_due', {due}}   (ARGV[8]) rescheduled since the caller read it; nothing changes
  {'running', {holder, due}}  a job holds the lease; looked at again when the lease would end
  {'moved', {job_id}}  the current job is no longer ARGV[3] (someone replaced it meanwhile)
  {'queued', {job_id, due}}   the job waits in its queue; looked at again in ARGV[6] ms
  {'replaced', {job_id, due}} msg:<id> now names a new job; the caller enqueues it
]]
--@include messaging
local K_MSG, K_LEASE, K_OUTBOX, K_CLOCK = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local MSG_ID, HOST, SEEN_JOB, VERDICT, FIRST_JOB = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local QUEUED_MS, GRACE_MS, ONLY_DUE = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8] == '1'
if rcall('EXISTS', K_MSG) == 0 then
  rcall('ZREM', K_OUTBOX, MSG_ID)
  return {'gone', '{}'}
end
local score = rcall('ZSCORE', K_OUTBOX, MSG_ID)
if not score then return {'finished', '{}'} end
local now = now_ms(K_CLOCK)
if ONLY_DUE and tonumber(score) > now then
  return {'not_due', cjson.encode({due = int(score)})}
end
local holder = rcall('GET', K_LEASE)
if holder then
  local due = int(now + math.max(rcall('PTTL', K_LEASE), 0) + 50)
  rcall('ZADD', K_OUTBOX, due, MSG_ID)
  return {'running', cjson.encode({holder = holder, due = due})}
end
local job = rcall('HGET', K_MSG, 'job:' .. HOST) or ''
if job ~= SEEN_JOB then return {'moved', cjson.encode({job_id = job})} end
if VERDICT == 'queued' then
  local due = int(now + QUEUED_MS)
  rcall('ZADD', K_OUTBOX, due, MSG_ID)
  return {'queued', cjson.encode({job_id = job, due = due})}
end
local n = rcall('HINCRBY', K_MSG, 'dispatches:' .. HOST, 1)
job = FIRST_JOB .. '-' .. n
rcall('HSET', K_MSG, 'job:' .. HOST, job)
local due = int(now + GRACE_MS)
rcall('ZADD', K_OUTBOX, due, MSG_ID)
return {'replaced', cjson.encode({job_id = job, due = due})}
