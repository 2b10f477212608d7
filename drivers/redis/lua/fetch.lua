-- KEYS: queue, reserved, delayed. ARGV: now, reservation deadline, how many, migrate batch.
-- Due delayed jobs and expired reservations go to the head of the queue (they have waited), oldest
-- first; then up to ARGV[3] jobs move from the head of the queue into the reserved set.
local function migrate(from)
  local due = redis.call('ZRANGEBYSCORE', from, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
  if #due > 0 then
    redis.call('ZREM', from, unpack(due))
    for i = #due, 1, -1 do
      redis.call('RPUSH', KEYS[1], due[i])
    end
  end
end
migrate(KEYS[3])
migrate(KEYS[2])
local jobs = redis.call('RPOP', KEYS[1], tonumber(ARGV[3]))
if not jobs then
  return {}
end
local scored = {}
for i = 1, #jobs do
  scored[2 * i - 1] = ARGV[2]
  scored[2 * i] = jobs[i]
end
redis.call('ZADD', KEYS[2], unpack(scored))
return jobs
