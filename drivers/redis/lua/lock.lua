-- Take a lock for an owner, with an expiry; the owner may take it again (its expiry is renewed).
-- KEYS[1] the lock; ARGV[1] the owner; ARGV[2] the expiry in milliseconds. Returns 1 if taken, else 0.
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
