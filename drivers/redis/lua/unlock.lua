-- Free a lock only for its owner (an expired lock another took since is theirs).
-- KEYS[1] the lock; ARGV[1] the owner. Returns 1 if freed, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
