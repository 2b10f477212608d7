-- KEYS: delayed zset, stream. ARGV: now, batch, maxlen (0 = none).
-- Due delayed jobs move from the sorted set into the stream (trimmed to about maxlen when it is set).
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due do
  redis.call('ZREM', KEYS[1], due[i])
  if tonumber(ARGV[3]) > 0 then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'data', due[i])
  else
    redis.call('XADD', KEYS[2], '*', 'data', due[i])
  end
end
return #due
