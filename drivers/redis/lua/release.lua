-- KEYS: queue, reserved. ARGV: jobs. Gives reserved jobs back to the head of the queue, as they were.
local released = 0
for i = #ARGV, 1, -1 do
  if redis.call('ZREM', KEYS[2], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[1], ARGV[i])
    released = released + 1
  end
end
return released
